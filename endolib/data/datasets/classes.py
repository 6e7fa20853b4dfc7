"""Official class lists of the downstream datasets, spelled exactly as their annotation files spell them.

Sources (checked with the project's search tool):
- Cholec80 phases/tools: the `videoNN-phase.txt` / `videoNN-tool.txt` headers and values of the CAMMA release.
- M2CAI16 workflow: Cholec80's phases plus `TrocarPlacement` first (challenge annotation files).
- AutoLaparo Task 1: the dataset README (phases 1..7, `labels/label_NN.txt` stores the 1-based id).
- CholecT50: `labels/VIDxx.json` "categories" of the CAMMA-public/cholect50 release (6 instruments,
  10 verbs, 15 targets, 100 triplets; the triplet -> (i, v, t) map is `label_mapping.txt`).
- OphNet2024 phases: the 96 phase ids of `OphNet2024_loca_challenge_phase.csv` (as listed by public
  preprocessing code); only the ids are stored in the csv, names are for display.
- SurgicalActions160: the 16 class folders of the ITEC release (`NN_name/NN_MM.mp4`).
- KUMC (PolypsSet): VOC `<name>` values `adenomatous` / `hyperplastic`.
"""

CHOLEC80_PHASES = ["Preparation", "CalotTriangleDissection", "ClippingCutting", "GallbladderDissection",
                   "GallbladderPackaging", "CleaningCoagulation", "GallbladderRetraction"]
CHOLEC80_TOOLS = ["Grasper", "Bipolar", "Hook", "Scissors", "Clipper", "Irrigator", "SpecimenBag"]

M2CAI16_PHASES = ["TrocarPlacement"] + CHOLEC80_PHASES

AUTOLAPARO_PHASES = ["Preparation", "Dividing Ligament and Peritoneum", "Dividing Uterine Vessels and Ligament",
                     "Transecting the Vagina", "Specimen Removal", "Suturing", "Washing"]

POLYPDIAG_CLASSES = ["normal", "abnormal"]
KUMC_CLASSES = ["adenomatous", "hyperplastic"]
CVC12K_CLASSES = ["background", "polyp"]

SURGICALACTIONS160_CLASSES = [
    "01_abdominal_access", "02_injection", "03_cutting", "04_blunt_dissection", "05_dissection_thermal",
    "06_irrigation", "07_coagulation", "08_suction", "09_needle_positioning", "10_needle_puncture",
    "11_knot_pushing", "12_knotting", "13_thread_cut", "14_sling-in", "15_endobag-in", "16_endobag-out"]

CHOLECT50_INSTRUMENTS = ["grasper", "bipolar", "hook", "scissors", "clipper", "irrigator"]
CHOLECT50_VERBS = ["grasp", "retract", "dissect", "coagulate", "clip", "cut", "aspirate", "irrigate", "pack",
                   "null_verb"]
CHOLECT50_TARGETS = ["gallbladder", "cystic_plate", "cystic_duct", "cystic_artery", "cystic_pedicle",
                     "blood_vessel", "fluid", "abdominal_wall_cavity", "liver", "adhesion", "omentum",
                     "peritoneum", "gut", "specimen_bag", "null_target"]
CHOLECT50_PHASES = ["preparation", "carlot-triangle-dissection", "clipping-and-cutting", "gallbladder-dissection",
                    "gallbladder-packaging", "cleaning-and-coagulation", "gallbladder-extraction"]
# triplet id -> "instrument,verb,target" (ids 0..99 in this order)
CHOLECT50_TRIPLETS = (
    "grasper,dissect,cystic_plate grasper,dissect,gallbladder grasper,dissect,omentum grasper,grasp,cystic_artery "
    "grasper,grasp,cystic_duct grasper,grasp,cystic_pedicle grasper,grasp,cystic_plate grasper,grasp,gallbladder "
    "grasper,grasp,gut grasper,grasp,liver grasper,grasp,omentum grasper,grasp,peritoneum "
    "grasper,grasp,specimen_bag grasper,pack,gallbladder grasper,retract,cystic_duct grasper,retract,cystic_pedicle "
    "grasper,retract,cystic_plate grasper,retract,gallbladder grasper,retract,gut grasper,retract,liver "
    "grasper,retract,omentum grasper,retract,peritoneum bipolar,coagulate,abdominal_wall_cavity "
    "bipolar,coagulate,blood_vessel bipolar,coagulate,cystic_artery bipolar,coagulate,cystic_duct "
    "bipolar,coagulate,cystic_pedicle bipolar,coagulate,cystic_plate bipolar,coagulate,gallbladder "
    "bipolar,coagulate,liver bipolar,coagulate,omentum bipolar,coagulate,peritoneum bipolar,dissect,adhesion "
    "bipolar,dissect,cystic_artery bipolar,dissect,cystic_duct bipolar,dissect,cystic_plate "
    "bipolar,dissect,gallbladder bipolar,dissect,omentum bipolar,grasp,cystic_plate bipolar,grasp,liver "
    "bipolar,grasp,specimen_bag bipolar,retract,cystic_duct bipolar,retract,cystic_pedicle "
    "bipolar,retract,gallbladder bipolar,retract,liver bipolar,retract,omentum hook,coagulate,blood_vessel "
    "hook,coagulate,cystic_artery hook,coagulate,cystic_duct hook,coagulate,cystic_pedicle "
    "hook,coagulate,cystic_plate hook,coagulate,gallbladder hook,coagulate,liver hook,coagulate,omentum "
    "hook,cut,blood_vessel hook,cut,peritoneum hook,dissect,blood_vessel hook,dissect,cystic_artery "
    "hook,dissect,cystic_duct hook,dissect,cystic_plate hook,dissect,gallbladder hook,dissect,omentum "
    "hook,dissect,peritoneum hook,retract,gallbladder hook,retract,liver scissors,coagulate,omentum "
    "scissors,cut,adhesion scissors,cut,blood_vessel scissors,cut,cystic_artery scissors,cut,cystic_duct "
    "scissors,cut,cystic_plate scissors,cut,liver scissors,cut,omentum scissors,cut,peritoneum "
    "scissors,dissect,cystic_plate scissors,dissect,gallbladder scissors,dissect,omentum clipper,clip,blood_vessel "
    "clipper,clip,cystic_artery clipper,clip,cystic_duct clipper,clip,cystic_pedicle clipper,clip,cystic_plate "
    "irrigator,aspirate,fluid irrigator,dissect,cystic_duct irrigator,dissect,cystic_pedicle "
    "irrigator,dissect,cystic_plate irrigator,dissect,gallbladder irrigator,dissect,omentum "
    "irrigator,irrigate,abdominal_wall_cavity irrigator,irrigate,cystic_pedicle irrigator,irrigate,liver "
    "irrigator,retract,gallbladder irrigator,retract,liver irrigator,retract,omentum "
    "grasper,null_verb,null_target bipolar,null_verb,null_target hook,null_verb,null_target "
    "scissors,null_verb,null_target clipper,null_verb,null_target irrigator,null_verb,null_target").split()
assert len(CHOLECT50_TRIPLETS) == 100


def triplet_components(triplet_id: int) -> tuple[int, int, int]:
    """(instrument, verb, target) ids of a CholecT50 triplet id (what `label_mapping.txt` tabulates)."""
    i, v, t = CHOLECT50_TRIPLETS[triplet_id].split(",")
    return CHOLECT50_INSTRUMENTS.index(i), CHOLECT50_VERBS.index(v), CHOLECT50_TARGETS.index(t)


# OphNet2024 phase ids 0..95 (names for display; the csv stores ids)
OPHNET_PHASES = [
    "Viscoelastic Injection", "Nuclear Management (for cataract surgery)", "Step Interval", "Non-functional Segment",
    "Intraocular Lens Implantation", "Incision Closure", "Corneal Incision Creation", "Capsulorhexis",
    "Cortex Aspiration", "Recipient Corneal Bed Preparation", "Anterior Chamber Injection/Washing",
    "Viscoelastic Aspiration", "Capsular Membrane Staining", "Corneal Graft Suturing",
    "Viscoelastic Application on Cornea", "Corneal-Scleral Tunnel Creation", "Swab Wiping",
    "Conjunctival Incision Creation", "Anterior Chamber Gas Injection", "Ocular Surface Irrigation",
    "Surgical Marking", "Subconjunctival Drug Injection", "Donor Corneal Graft Preparation", "Scleral Hemostasis",
    "Corneal Interlamellar Injection", "Drainage Tube Implantation", "Use of Iris Expander",
    "Drainage Device Preparation", "Scleral Flap Creation", "Anterior Chamber Washing", "Suspension Suture",
    "Drainage Device Implantation", "Intraoperative Gonioscopy Application", "Corneal Measurement",
    "Scleral Flap Suturing", "Scleral Tunnel Creation", "Placement of Bandage Contact Lens", "Peripheral Iridectomy",
    "Anterior Chamber Drainage Device Implantation", "Antimetabolite Application",
    "Scleral Support Ring Manipulation", "Deep Sclerectomy", "Anterior Vitrectomy", "Placement of Eyelid Speculum",
    "Hooking of Extraocular Muscle", "Observation of Corneal Astigmatism", "Pupil Dilation",
    "Iris Prolapse Management", "Measurement on the Scleral", "Goniotomy", "Trabeculectomy",
    "Instrument Fabrication", "Capsular Tension Ring Implantation",
    "Femtosecond Laser-Assisted Corneal Transplantation", "Removal of Pupillary/Iris Fibrosis Membrane",
    "Allograft/Biological Tissue Trimming", "Corneal Suture Removal", "Iris Synechiae Separation",
    "Placement of Sponge on Cornea", "Femtosecond Laser-Assisted Cataract Surgery", "Astigmatism Axis Gauge",
    "Microcatheter Insertion into Trabecular Meshwork", "Sub-Iris Exploration", "Artificial Cornea Manipulaiton",
    "Scleral Puncture/Incision", "Astigmatic Keratotomy", "Scleral Fixation of Intraocular Lens",
    "Removal of Fascia Tissue", "Canthotomy", "Removal of Lens Fibrotic Membrane",
    "Amniotic Membrane Transplantation", "Pupilloplasty", "Anterior Chamber Irrigation", "Sub-Tenon Injection",
    "Sclerectomy", "Corneal Interlamellar Irrigation", "Cyclophotocoagulation", "Drainage Device Adjustment",
    "Schlemm's Canal Inner Wall Removal", "Scleral Flap Incision Inspection", "Lens Extraction",
    "Anterior Chamber Vitreous Cleaning", "Intraocular Lens Removal", "Pterygium Excision", "Scleral Suture",
    "Drainage Tube Removal", "Suture Trimming", "Conjunctival Vessel Examination",
    "Special Puncture Knife Traversing the Anterior Chamber", "Removal of Object from Anterior Chamber",
    "Anterior Chamber Inspection", "Iris Repositioning", "Suprachoroidal Space Separation",
    "Scleral Flap Embedding in the Suprachoroidal Space", "Vitreoretinal Surgery", "Conjunctival Trimming"]
assert len(OPHNET_PHASES) == 96

# CholecT50 official video splits (CAMMA-public/cholect50 dataloader: 'cholect50' = Rendezvous paper split,
# 'cholect50-challenge' = CholecTriplet challenge); cross-validation folds of 'cholect50-crossval'.
CHOLECT50_SPLITS = {
    "cholect50": {"train": [1, 15, 26, 40, 52, 65, 79, 2, 18, 27, 43, 56, 66, 92, 4, 22, 31, 47, 57, 68, 96, 5, 23, 35,
                            48, 60, 70, 103, 13, 25, 36, 49, 62, 75, 110],
                  "val": [8, 12, 29, 50, 78], "test": [6, 51, 10, 73, 14, 74, 32, 80, 42, 111]},
    "cholect50-challenge": {"train": [1, 15, 26, 40, 52, 79, 2, 27, 43, 56, 66, 4, 22, 31, 47, 57, 68, 23, 35, 48, 60,
                                      70, 13, 25, 49, 62, 75, 8, 12, 29, 50, 78, 6, 51, 10, 73, 14, 32, 80, 42],
                            "val": [5, 18, 36, 65, 74], "test": [92, 96, 103, 110, 111]},
}
CHOLECT50_CROSSVAL = {1: [79, 2, 51, 6, 25, 14, 66, 23, 50, 111], 2: [80, 32, 5, 15, 40, 47, 26, 48, 70, 96],
                      3: [31, 57, 36, 18, 52, 68, 10, 8, 73, 103], 4: [42, 29, 60, 27, 65, 75, 22, 49, 12, 110],
                      5: [78, 43, 62, 35, 74, 1, 56, 4, 13, 92]}
