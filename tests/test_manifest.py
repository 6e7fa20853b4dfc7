"""Dataset manifests: every YAML passes the schema; broken manifests fail naming the file and field."""
import math

import matplotlib
import pytest
import yaml

from endolib.data.manifest import (ManifestError, load_manifest, load_manifests, manifest_table, plot_corpus,
                                   validate)
from endolib.paths import MANIFESTS

matplotlib.use("Agg")

PRETRAIN = {"Colonoscopic", "SUN", "SUN-SEG", "LDPolypVideo", "Hyper-Kvasir", "Kvasir-Capsule",
            "CholecTriplet (CholecT45)", "Endo-FM collection", "GLENDA v1.0", "hSDB-instrument", "EndoMapper",
            "ROBUST-MIS"}
DOWNSTREAM = {"PolypDiag", "CVC-12k", "KUMC", "Cholec80", "AutoLaparo", "M2CAI16-workflow", "OphNet",
              "CholecT50", "SurgicalActions160"}


def test_every_manifest_loads_and_the_corpus_is_complete():
    df = load_manifests()
    assert len(df) == len(list(MANIFESTS.glob("*.yaml")))
    assert PRETRAIN <= set(df[df.role.isin(["pretrain", "both"])].name)
    assert DOWNSTREAM <= set(df[df.role.isin(["downstream", "both"])].name)
    for col in ("videos", "frames", "hours", "fps"):
        assert all(math.isnan(v) or v >= 0 for v in df[col])
    assert df.num_classes[df.name == "CholecT50"].item() == 100
    assert df.num_classes[df.name == "Cholec80"].item() == 7


def test_downstream_manifests_match_the_synthetic_generator_folders():
    from endolib.data.synthetic import WRITERS

    df = load_manifests()
    for r in df[df.synthetic != ""].itertuples():
        assert r.synthetic in WRITERS, r.file
        assert WRITERS[r.synthetic][0] == r.folder, f"{r.file}: folder {r.folder} != generator's"
    assert set(df[df.role == "downstream"].synthetic) >= {"polypdiag", "cvc12k", "kumc", "cholec80",
                                                          "autolaparo", "m2cai16", "ophnet", "cholect50",
                                                          "surgicalactions160"}


def _good():
    return yaml.safe_load((MANIFESTS / "cholec80.yaml").read_text())


@pytest.mark.parametrize("field,value,match", [
    ("videos", -3, "non-negative int"),
    ("videos", "many", "non-negative int"),
    ("fps", "25fps", "non-negative float"),
    ("role", "training", "one of"),
    ("modality", "endoscopy", "one of"),
    ("access", "free", "one of"),
    ("source_url", "camma.unistra.fr", "http"),
    ("classes", [], "list of class names"),
    ("citation", "", "non-empty"),
])
def test_bad_field_names_file_and_field(tmp_path, field, value, match):
    data = _good()
    data[field] = value
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ManifestError, match=match) as e:
        load_manifest(path)
    assert "broken.yaml" in str(e.value) and repr(field) in str(e.value)


def test_missing_unknown_field_and_bad_yaml(tmp_path):
    data = _good()
    del data["layout"]
    with pytest.raises(ManifestError, match="'layout'.*missing"):
        validate(data, "x.yaml")
    data = {**_good(), "lisence": "MIT"}
    with pytest.raises(ManifestError, match="'lisence'.*unknown field"):
        validate(data, "x.yaml")
    (tmp_path / "bad.yaml").write_text("name: a: b\n")
    with pytest.raises(ManifestError, match="bad.yaml.*not valid YAML"):
        load_manifest(tmp_path / "bad.yaml")
    with pytest.raises(ManifestError, match="mapping"):
        validate(["not", "a", "mapping"])


def test_unknown_becomes_nan_and_duplicates_are_refused(tmp_path):
    for name in ("a", "b"):
        (tmp_path / f"{name}.yaml").write_text((MANIFESTS / "cholec80.yaml").read_text())
    with pytest.raises(ManifestError, match="Cholec80"):
        load_manifests(tmp_path)
    (tmp_path / "b.yaml").unlink()
    df = load_manifests(tmp_path)
    assert df.videos.item() == 80 and math.isnan(df.frames.item())
    with pytest.raises(FileNotFoundError):
        load_manifests(tmp_path / "empty")


def test_table_and_corpus_plot():
    df = load_manifests()
    t = manifest_table(df)
    assert list(t.role.unique()) == ["downstream", "pretrain"] and len(t) == len(df)
    fig = plot_corpus(df)
    bars = fig.axes[0].patches
    assert len(bars) == len(PRETRAIN)
    # a known count is drawn at its value; unknown ones are labelled, not silently plotted as data
    texts = [t.get_text().strip() for t in fig.axes[0].texts]
    assert texts.count("unknown") == int(df[df.role == "pretrain"].hours.isna().sum())
    frames_texts = [t.get_text() for t in fig.axes[1].texts]
    assert frames_texts.count("unknown") == int(df[df.role == "pretrain"].frames.isna().sum())
