from endolib import workbook


def test_every_numbered_notebook_is_listed_in_order():
    names = [p.name for p in workbook.list_notebooks()]
    assert names == sorted(names) and names[0].startswith("00_") and len(names) >= 10
    assert [p.name for p in workbook.list_notebooks(["03", "04"])] == names[3:5]


def test_phase_notebook_runs_once_per_dataset_unless_the_user_names_one():
    declared = {"dataset": {}, "seed": {}}
    runs = workbook.runs_for("06_phase_recognition.ipynb", declared, {"seed": 1, "device": "cuda"})
    assert [n for n, _ in runs] == [f"06_phase_recognition_{d}.ipynb"
                                    for d in ("cholec80", "autolaparo", "m2cai16", "ophnet")]
    assert all(p["seed"] == 1 and "device" not in p for _, p in runs)  # only declared parameters pass
    assert workbook.runs_for("06_phase_recognition.ipynb", declared, {"dataset": "ophnet"}) == \
        [("06_phase_recognition.ipynb", {"dataset": "ophnet"})]
    assert workbook.runs_for("03_x.ipynb", {"seed": {}}, {"seed": 2}) == [("03_x.ipynb", {"seed": 2})]
