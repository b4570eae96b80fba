//! Whether the header's age can be believed. De-identified data often carries placeholder dates
//! (a birth date equal to the study date makes a "newborn"); an age the anatomy contradicts is
//! treated as unknown, so no pediatric warning or age preset follows from it.

use ildtrack_volume::Warning;

/// The largest lung volume (mL, both lungs, inspiration) taken as possible for a child of
/// `age_years`: a deliberately generous ceiling, well above the total lung capacity children
/// of that age reach, so that a real child is not turned into an adult by it; only ages the
/// anatomy clearly contradicts (adult lungs in an infant or a small child) are set aside.
pub(crate) fn max_child_lung_ml(age_years: f64) -> f64 {
    600.0 + 450.0 * age_years
}

/// The age to use and, when the header's age is set aside, the note that says so. `lung_ml` is
/// the segmented lung volume; one-slice inputs (no volume) keep the header's age.
pub(crate) fn checked_age(
    age_years: Option<f64>,
    lung_ml: f64,
    one_slice: bool,
) -> (Option<f64>, Option<Warning>) {
    match age_years {
        Some(age) if !one_slice && age < 18.0 && lung_ml > max_child_lung_ml(age) => (
            None,
            Some(Warning::new(
                "age-implausible",
                format!(
                    "the header's age ({age:.1} years) is contradicted by the lungs ({:.1} L; a \
                     child of that age has well under {:.1} L): placeholder dates in de-identified \
                     data? The age is treated as unknown (adult thresholds, no pediatric preset)",
                    lung_ml / 1000.0,
                    max_child_lung_ml(age) / 1000.0
                ),
            )),
        ),
        other => (other, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newborn_with_adult_lungs_has_an_unknown_age() {
        let (age, note) = checked_age(Some(0.0), 4500.0, false);
        assert_eq!(age, None);
        assert!(note.is_some_and(|w| w.code == "age-implausible"));
    }

    #[test]
    fn a_child_with_a_child_s_lungs_and_adults_keep_their_age() {
        assert_eq!(checked_age(Some(11.0), 2400.0, false), (Some(11.0), None));
        assert_eq!(checked_age(Some(45.0), 7000.0, false), (Some(45.0), None));
        assert_eq!(checked_age(None, 4500.0, false), (None, None));
        // One slice: no volume to judge by.
        assert_eq!(checked_age(Some(0.0), 4500.0, true), (Some(0.0), None));
    }
}
