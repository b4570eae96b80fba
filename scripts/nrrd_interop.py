#!/usr/bin/env python3
"""NRRD written and read by software outside ildtrack, for ildtrack's interoperability tests.

Run with the test venv (`.venv-tools/bin/python`, made by scripts/setup.sh: SimpleITK, pynrrd,
numpy). Two commands, each printing one JSON object on stdout:

  write <dicom-folder or file> <out-folder>
      Reads the DICOM series (or single file) with SimpleITK (GDCM) and writes it as NRRD five ways:
        sitk-gzip.nrrd     SimpleITK, gzip, attached, LPS
        sitk-raw.nhdr      SimpleITK, raw, detached (sitk-raw.raw)
        pynrrd-ras.nrrd    pynrrd, gzip, int16, space right-anterior-superior (directions and
                           origin flipped from LPS, so a reader must flip them back)
        pynrrd-be.nhdr     pynrrd, raw, big-endian float32, detached data file
        pynrrd-xyz.nrrd    pynrrd, gzip, int32, space scanner-xyz
      and prints the series' geometry as SimpleITK sees it (size x,y,z; spacing; origin;
      direction, row-major with columns = axes; LPS).

  compare <nrrd-out-folder> <nifti-out-folder>
      Reads ildtrack's lungs.nrrd / classes.nrrd (SimpleITK and pynrrd) and
      segmentation.seg.nrrd (pynrrd) from the first folder and lungs.nii.gz / classes.nii.gz
      (SimpleITK) from the second; prints for each map whether voxels and geometry agree, and
      the segment names, label values and layers of the segmentation.
"""
import json
import os
import sys

import numpy as np
import SimpleITK as sitk
import nrrd


def geometry(im):
    return {
        "size": list(im.GetSize()),
        "spacing": list(im.GetSpacing()),
        "origin": list(im.GetOrigin()),
        "direction": list(im.GetDirection()),
    }


def write(dicom_dir, out):
    os.makedirs(out, exist_ok=True)
    if os.path.isfile(dicom_dir):
        im = sitk.ReadImage(dicom_dir)  # one file: a single slice
    else:
        r = sitk.ImageSeriesReader()
        ids = r.GetGDCMSeriesIDs(dicom_dir)
        if len(ids) != 1:
            raise SystemExit(f"expected one series in {dicom_dir}, found {len(ids)}")
        r.SetFileNames(r.GetGDCMSeriesFileNames(dicom_dir, ids[0]))
        im = r.Execute()
    # Fast gzip levels: the test is about the format, not the file size.
    sitk.WriteImage(im, os.path.join(out, "sitk-gzip.nrrd"), useCompression=True, compressionLevel=1)
    # SimpleITK writes a detached header when the name ends in .nhdr.
    sitk.WriteImage(im, os.path.join(out, "sitk-raw.nhdr"), useCompression=False)

    # pynrrd takes arrays indexed (x, y, z): SimpleITK's array is (z, y, x).
    arr = sitk.GetArrayFromImage(im).transpose(2, 1, 0)
    d = np.array(im.GetDirection()).reshape(3, 3)  # columns = axes, LPS
    steps = (d * np.array(im.GetSpacing())).T  # rows = axes
    origin = np.array(im.GetOrigin())
    flip = np.array([-1.0, -1.0, 1.0])  # LPS <-> RAS
    nrrd.write(
        os.path.join(out, "pynrrd-ras.nrrd"),
        arr.astype(np.int16),
        {
            "space": "right-anterior-superior",
            "space directions": steps * flip,
            "space origin": origin * flip,
            "kinds": ["domain"] * 3,
            "encoding": "gzip",
        },
        compression_level=1,
    )
    nrrd.write(
        os.path.join(out, "pynrrd-be.nhdr"),
        arr.astype(">f4"),
        {
            "space": "left-posterior-superior",
            "space directions": steps,
            "space origin": origin,
            "kinds": ["domain"] * 3,
            "encoding": "raw",
        },
        detached_header=True,
    )
    nrrd.write(
        os.path.join(out, "pynrrd-xyz.nrrd"),
        arr.astype(np.int32),
        {
            "space": "scanner-xyz",
            "space directions": steps,
            "space origin": origin,
            "kinds": ["domain"] * 3,
            "encoding": "gzip",
        },
        compression_level=1,
    )
    print(json.dumps({"geometry": geometry(im), "files": sorted(os.listdir(out))}))


def same_geometry(a, b):
    ga, gb = geometry(a), geometry(b)
    return ga["size"] == gb["size"] and all(
        np.allclose(ga[k], gb[k], atol=1e-4) for k in ("spacing", "origin", "direction")
    )


def compare(nrrd_dir, nifti_dir):
    out = {}
    layers = []
    for name in ("lungs", "classes"):
        ours = sitk.ReadImage(os.path.join(nrrd_dir, name + ".nrrd"))
        ref = sitk.ReadImage(os.path.join(nifti_dir, name + ".nii.gz"))
        ref_arr = sitk.GetArrayFromImage(ref)
        data, _ = nrrd.read(os.path.join(nrrd_dir, name + ".nrrd"))
        layers.append(ref_arr)
        out[name] = {
            "sitk_voxels_equal": bool(np.array_equal(sitk.GetArrayFromImage(ours), ref_arr)),
            "pynrrd_voxels_equal": bool(np.array_equal(data.transpose(2, 1, 0), ref_arr)),
            "geometry_equal": same_geometry(ours, ref),
            "geometry": geometry(ours),
            "nonzero": int(np.count_nonzero(ref_arr)),
        }
    seg, h = nrrd.read(os.path.join(nrrd_dir, "segmentation.seg.nrrd"))
    segments = []
    i = 0
    while f"Segment{i}_ID" in h:
        segments.append(
            {
                k: h[f"Segment{i}_{k}"]
                for k in ("ID", "Name", "Color", "LabelValue", "Layer", "Extent")
            }
        )
        i += 1
    # seg is (layer, x, y, z); the references are (z, y, x).
    seg_layers_equal = seg.shape[0] == 2 and all(
        np.array_equal(seg[k].transpose(2, 1, 0), layers[k]) for k in range(2)
    )
    # Every segment's voxels: the reference map's voxels equal to its label value.
    segment_voxels = {
        s["ID"]: int(np.count_nonzero(seg[int(s["Layer"])] == int(s["LabelValue"])))
        for s in segments
    }
    reference_voxels = {
        s["ID"]: int(np.count_nonzero(layers[int(s["Layer"])] == int(s["LabelValue"])))
        for s in segments
    }
    out["segmentation"] = {
        "kinds": h.get("kinds"),
        "space": h.get("space"),
        "layers_equal": bool(seg_layers_equal),
        "segments": segments,
        "segment_voxels": segment_voxels,
        "reference_voxels": reference_voxels,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "write":
        write(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        compare(sys.argv[2], sys.argv[3])
    else:
        raise SystemExit(__doc__)
