//! Reconstruction-kernel heuristics: is a kernel name a sharp "lung" kernel or a soft one?

use serde::Serialize;

/// Rough class of a reconstruction kernel, from its name alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KernelClass {
    /// Sharp / high-frequency kernel used for lung parenchyma.
    Lung,
    /// Smooth / standard / soft-tissue kernel.
    Soft,
    Unknown,
}

fn digits_after(s: &str, prefix_len: usize) -> Option<u32> {
    let d: String = s
        .chars()
        .skip(prefix_len)
        .take_while(|c| c.is_ascii_digit())
        .collect();
    d.parse().ok()
}

/// Classify a ConvolutionKernel value (multi-valued kernels joined with `\` are classified by
/// their first value). Heuristics: Siemens `B60f`–`B80f`, `I70f`, `Br64` and similar (number ≥ 50)
/// are lung, `B30f`/`B40f`/`Br40` soft; GE `LUNG`/`BONE`/`BONEPLUS`/`EDGE`/`SHARP` lung,
/// `STANDARD`/`SOFT`/`SMOOTH` soft; Philips `L`, `LA`, `YA`, `YB`, `YC`, `D`, `E` lung, `A`/`B`/`C`
/// soft; Toshiba/Canon `FC5x`/`FC8x` lung, `FC0x`/`FC1x` soft.
pub fn classify_kernel(kernel: &str) -> KernelClass {
    let first = kernel
        .split('\\')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_uppercase();
    let k = first.as_str();
    if k.is_empty() {
        return KernelClass::Unknown;
    }
    for w in ["LUNG", "BONE", "EDGE", "SHARP", "DETAIL", "HIGH"] {
        if k.contains(w) {
            return KernelClass::Lung;
        }
    }
    for w in [
        "STANDARD",
        "STND",
        "SOFT",
        "SMOOTH",
        "BODY",
        "MEDIASTIN",
        "ABDOMEN",
    ] {
        if k.contains(w) {
            return KernelClass::Soft;
        }
    }
    if let Some(rest) = k.strip_prefix("FC") {
        // Toshiba / Canon FCxx.
        if let Some(n) = digits_after(rest, 0) {
            return match n {
                0..=19 => KernelClass::Soft,
                50..=59 | 80..=89 => KernelClass::Lung,
                _ => KernelClass::Unknown,
            };
        }
    }
    // Siemens: B/I/H/Br/Bl/Hr/Qr/Ir + number + optional letter.
    let letters: String = k.chars().take_while(|c| c.is_ascii_alphabetic()).collect();
    if matches!(
        letters.as_str(),
        "B" | "I" | "H" | "BR" | "BL" | "HR" | "QR" | "IR" | "BV" | "BF" | "T" | "TR"
    ) && let Some(n) = digits_after(k, letters.len())
    {
        return if n >= 50 {
            KernelClass::Lung
        } else {
            KernelClass::Soft
        };
    }
    // Philips single/double letters.
    match k {
        "L" | "LA" | "YA" | "YB" | "YC" | "YD" | "D" | "E" | "EB" | "EC" => KernelClass::Lung,
        "A" | "B" | "C" | "UA" | "UB" | "UC" | "CB" => KernelClass::Soft,
        _ => KernelClass::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, expect: KernelClass) {
        assert_eq!(classify_kernel(name), expect, "kernel {name}");
    }

    #[test]
    fn vendor_kernels_classify() {
        use KernelClass::*;
        for k in [
            "B70f", "B60f", "B80f", "I70f\\3", "Br64", "LUNG", "BONEPLUS", "L", "YA", "YB", "D",
            "FC51", "FC86",
        ] {
            check(k, Lung);
        }
        for k in [
            "B40f", "B30f", "B", "STANDARD", "SOFT", "FC03", "FC13", "Br40d", "C",
        ] {
            check(k, Soft);
        }
        check("", Unknown);
        check("XYZ", Unknown);
    }
}
