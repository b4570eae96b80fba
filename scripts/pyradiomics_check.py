#!/usr/bin/env python3
"""Compare ildtrack's first-order lung statistics with pyradiomics on the same image and mask.

Usage:
    cargo run --release -p ildtrack-analysis --example analysis_radiomics_dump -- OUT [DICOM_DIR]
    python3 scripts/pyradiomics_check.py OUT

OUT holds image.nii.gz (HU), lungs.nii.gz (0 background, 1 right, 2 left) and
ildtrack_metrics.json (whole / right / left metrics from visit.json). For each region this runs
pyradiomics' first-order features (no resampling, no normalisation) and compares mean,
SD (sqrt of pyradiomics' population Variance), skewness, kurtosis (pyradiomics reports the
non-excess kurtosis = ildtrack's kurtosis_excess + 3), P10, median and P90. P15 and P85 are
not pyradiomics features; they are checked against numpy.percentile on the same voxels (the
definition pyradiomics uses for its own percentiles). Exit status 1 on any mismatch.

Needs: pip install numpy SimpleITK pyradiomics (pyradiomics 3.0.1 builds on Python 3.11 with
`pip install wheel versioneer && pip install --no-build-isolation pyradiomics==3.0.1`).
"""

import json
import logging
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from radiomics import firstorder

logging.getLogger("radiomics").setLevel(logging.ERROR)

REL_TOL = 1e-6
ABS_TOL = 1e-6


def close(a, b):
    return abs(a - b) <= max(ABS_TOL, REL_TOL * max(abs(a), abs(b)))


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    out = Path(sys.argv[1])
    image = sitk.ReadImage(str(out / "image.nii.gz"))
    lungs = sitk.ReadImage(str(out / "lungs.nii.gz"))
    ours_all = json.loads((out / "ildtrack_metrics.json").read_text())
    hu = sitk.GetArrayFromImage(image).astype(np.float64)
    lab = sitk.GetArrayFromImage(lungs)
    failures = 0
    print(f"{'region':6} {'statistic':10} {'ildtrack':>14} {'reference':>14}  ok")
    for region, values in (("right", (1,)), ("left", (2,)), ("whole", (1, 2))):
        ours = ours_all[region]
        binary = np.isin(lab, values).astype(np.uint8)
        if binary.sum() == 0:
            print(f"{region}: empty mask, skipped")
            continue
        mask = sitk.GetImageFromArray(binary)
        mask.CopyInformation(lungs)
        fo = firstorder.RadiomicsFirstOrder(image, mask, label=1)
        fo.enableAllFeatures()
        f = {k: float(v) for k, v in fo.execute().items()}
        voxels = hu[binary == 1]
        rows = [
            ("voxels", ours["voxel_count"], float(voxels.size)),
            ("mean", ours["mean_hu"], f["Mean"]),
            ("sd", ours["sd_hu"], float(np.sqrt(f["Variance"]))),
            ("skewness", ours["skewness"], f["Skewness"]),
            ("kurtosis", ours["kurtosis_excess"] + 3.0, f["Kurtosis"]),
            ("p10", ours["p10_hu"], f["10Percentile"]),
            ("p50", ours["p50_hu"], f["Median"]),
            ("p90", ours["p90_hu"], f["90Percentile"]),
            ("p15*", ours["p15_hu"], float(np.percentile(voxels, 15))),
            ("p85*", ours["p85_hu"], float(np.percentile(voxels, 85))),
        ]
        for name, a, b in rows:
            ok = close(float(a), float(b))
            failures += 0 if ok else 1
            print(f"{region:6} {name:10} {float(a):14.6f} {float(b):14.6f}  {'ok' if ok else 'MISMATCH'}")
    print("* numpy.percentile (pyradiomics has no P15/P85 feature)")
    print(f"pyradiomics check: {'passed' if failures == 0 else f'{failures} mismatches'}")
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
