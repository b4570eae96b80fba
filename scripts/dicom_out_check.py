#!/usr/bin/env python3
"""Read ildtrack's DICOM Segmentation back with highdicom (software outside ildtrack) and compare
it with the source series and the NIfTI label maps of the same run. Prints one JSON object.

  dicom_out_check.py <segmentation.dcm> <source-dicom-folder> <folder with lungs.nii.gz, classes.nii.gz>
  dicom_out_check.py sr <measurements.dcm> <segmentation.dcm>
      parses the TID 1500 Measurement Report with highdicom's MeasurementReport and prints each
      measurement group: tracking identifier, template, referenced segment (and whether it
      points at this SEG), finding site, and every measurement (meaning -> [value, unit]).

Each segment's voxels are taken from the SEG per source instance (highdicom resolves frames by
their Derivation Image references) and compared with the label map value the segment stands for
(segment label -> (map, value) below, the same table as ildtrack's `dicom_segments`).
"""
import json
import os
import sys

import highdicom as hd
import numpy as np
import pydicom
import SimpleITK as sitk

# Segment label -> (label map, value in it).
MEANING = {
    "Right lung": ("lungs", 1),
    "Left lung": ("lungs", 2),
    "Low attenuation": ("classes", 1),
    "Ground-glass opacity": ("classes", 3),
    "Consolidation": ("classes", 4),
    "Vessels and dense structures": ("classes", 5),
}


def main(seg_path, dicom_dir, maps_dir):
    seg = hd.seg.segread(seg_path)
    r = sitk.ImageSeriesReader()
    ids = r.GetGDCMSeriesIDs(dicom_dir)
    files = r.GetGDCMSeriesFileNames(dicom_dir, ids[0])  # sorted along the slice normal
    src = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    uids = [d.SOPInstanceUID for d in src]
    maps = {
        m: sitk.GetArrayFromImage(sitk.ReadImage(os.path.join(maps_dir, m + ".nii.gz")))
        for m in ("lungs", "classes")
    }
    numbers = [int(d.SegmentNumber) for d in seg.SegmentSequence]
    px = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=uids,
        segment_numbers=numbers,
        combine_segments=False,
        ignore_spatial_locations=True,
    )  # (instances, rows, cols, segments)
    segments = []
    expected_frames = 0
    for k, d in enumerate(seg.SegmentSequence):
        label = d.SegmentLabel
        m, v = MEANING[label]
        ref = maps[m] == v
        expected_frames += int(np.count_nonzero(ref.reshape(ref.shape[0], -1).any(axis=1)))
        got = px[..., k] > 0
        segments.append(
            {
                "number": int(d.SegmentNumber),
                "label": label,
                "category": [d.SegmentedPropertyCategoryCodeSequence[0].CodingSchemeDesignator,
                             d.SegmentedPropertyCategoryCodeSequence[0].CodeValue],
                "type": [d.SegmentedPropertyTypeCodeSequence[0].CodingSchemeDesignator,
                         d.SegmentedPropertyTypeCodeSequence[0].CodeValue,
                         d.SegmentedPropertyTypeCodeSequence[0].CodeMeaning],
                "algorithm": d.SegmentAlgorithmType,
                "voxels": int(np.count_nonzero(got)),
                "reference_voxels": int(np.count_nonzero(ref)),
                "voxels_equal": bool(got.shape == ref.shape and np.array_equal(got, ref)),
            }
        )
    refs = seg.ReferencedSeriesSequence[0]
    out = {
        "segmentation_type": seg.SegmentationType,
        "segments": segments,
        "frames": int(seg.NumberOfFrames),
        "expected_frames": expected_frames,
        "frame_of_reference_equal": seg.FrameOfReferenceUID == src[0].FrameOfReferenceUID,
        "study_equal": seg.StudyInstanceUID == src[0].StudyInstanceUID,
        "patient_equal": str(seg.PatientID) == str(src[0].PatientID)
        and str(seg.PatientName) == str(src[0].PatientName),
        "referenced_series_equal": refs.SeriesInstanceUID == src[0].SeriesInstanceUID,
        "referenced_instances": sorted(i.ReferencedSOPInstanceUID for i in refs.ReferencedInstanceSequence)
        == sorted(uids),
        "new_series_uid": seg.SeriesInstanceUID != src[0].SeriesInstanceUID
        and seg.SeriesInstanceUID.startswith("2.25."),
    }
    print(json.dumps(out))


def sr_main(sr_path, seg_path):
    sr = hd.sr.srread(sr_path)
    seg = pydicom.dcmread(seg_path, stop_before_pixels=True)
    report = hd.sr.MeasurementReport.from_sequence([sr])
    groups = []
    for kind, found in (
        ("1411", report.get_volumetric_roi_measurement_groups()),
        ("1501", report.get_image_measurement_groups()),
    ):
        for g in found:
            entry = {
                "template": kind,
                "tracking_identifier": g.tracking_identifier,
                "has_tracking_uid": g.tracking_uid is not None,
                "finding_site": [str(getattr(s.value, "value", s.value)) for s in g.finding_sites],
                "measurements": {
                    m.name.meaning: [float(m.value), m.unit.value] for m in g.get_measurements()
                },
            }
            if kind == "1411":
                ref = g.referenced_segment
                entry["segment_numbers"] = list(ref.referenced_segment_numbers)
                entry["segment_of_this_seg"] = (
                    ref.referenced_sop_instance_uid == seg.SOPInstanceUID
                )
            groups.append(entry)
    evidence = {
        s.SeriesInstanceUID
        for st in sr.CurrentRequestedProcedureEvidenceSequence
        for s in st.ReferencedSeriesSequence
    }
    print(
        json.dumps(
            {
                "sop_class": sr.SOPClassUID,
                "template": sr.ContentTemplateSequence[0].TemplateIdentifier,
                "groups": groups,
                "evidence_has_seg_series": seg.SeriesInstanceUID in evidence,
                "study_equal": sr.StudyInstanceUID == seg.StudyInstanceUID,
                "patient_equal": str(sr.PatientID) == str(seg.PatientID),
            }
        )
    )


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "sr":
        sr_main(*sys.argv[2:])
    elif len(sys.argv) == 4:
        main(*sys.argv[1:])
    else:
        raise SystemExit(__doc__)
