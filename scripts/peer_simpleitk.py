#!/usr/bin/env python3
"""Peer for the `analyze` benchmark: a classical SimpleITK lung pipeline on the same series.

Stages (what a typical classical lung-quantification script does):
  read the DICOM series -> body = largest component of HU > -500, holes filled slice by slice
  -> air inside body (HU < -400) -> connected components, drop components touching the border,
  keep the two largest -> binary closing (ball, 5 voxels) -> label statistics (mean, SD, count)
  and density-class counts (LAA-950, GGO -700..-300, consolidation -300..100).

Usage: peer_simpleitk.py <dicom_folder> [--threads N] [--json]
Prints per-stage and total wall times in ms (and lung volume in mL) so `ildtrack bench` or a
person can compare them with `ildtrack analyze` on the same series and the same machine.
"""
import json
import sys
import time

import SimpleITK as sitk


def main() -> int:
    args = sys.argv[1:]
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    folder = args[0]
    threads = 2
    if "--threads" in args:
        threads = int(args[args.index("--threads") + 1])
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)
    t = {}
    t0 = time.perf_counter()

    reader = sitk.ImageSeriesReader()
    files = reader.GetGDCMSeriesFileNames(folder)
    reader.SetFileNames(files)
    img = reader.Execute()
    t["load"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    body = sitk.BinaryThreshold(img, -500, 5000, 1, 0)
    cc = sitk.ConnectedComponent(body)
    cc = sitk.RelabelComponent(cc, sortByObjectSize=True)
    body = sitk.BinaryThreshold(cc, 1, 1, 1, 0)
    # Fill holes slice by slice: in 3-D the lungs reach the outside through the trachea.
    body = sitk.JoinSeries([sitk.BinaryFillhole(body[:, :, k]) for k in range(body.GetSize()[2])])
    body.CopyInformation(img)
    air = sitk.BinaryThreshold(img, -5000, -400, 1, 0)
    air = sitk.And(air, body)
    cc = sitk.ConnectedComponent(air)
    cc = sitk.RelabelComponent(cc, sortByObjectSize=True, minimumObjectSize=1000)
    lungs = sitk.BinaryThreshold(cc, 1, 2, 1, 0)
    lungs = sitk.BinaryMorphologicalClosing(lungs, [5, 5, 5], sitk.sitkBall)
    t["segment"] = time.perf_counter() - t1

    t2 = time.perf_counter()
    stats = sitk.LabelStatisticsImageFilter()
    stats.Execute(img, lungs)
    classes = sitk.Cast(img < -950, sitk.sitkUInt8) + 2 * sitk.Cast((img >= -700) & (img < -300), sitk.sitkUInt8) \
        + 3 * sitk.Cast((img >= -300) & (img < 100), sitk.sitkUInt8)
    cstats = sitk.LabelStatisticsImageFilter()
    cstats.Execute(classes, lungs)
    t["quantify"] = time.perf_counter() - t2
    t["total"] = time.perf_counter() - t0

    sp = img.GetSpacing()
    voxel_ml = sp[0] * sp[1] * sp[2] / 1000.0
    out = {
        "peer": f"SimpleITK {sitk.Version.VersionString()}",
        "threads": threads,
        "dims_xyz": list(img.GetSize()),
        "timings_ms": {k: round(v * 1000.0, 1) for k, v in t.items()},
        "lung_volume_ml": stats.GetCount(1) * voxel_ml if stats.HasLabel(1) else 0.0,
        "mean_hu": stats.GetMean(1) if stats.HasLabel(1) else None,
        "sd_hu": stats.GetSigma(1) if stats.HasLabel(1) else None,
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
