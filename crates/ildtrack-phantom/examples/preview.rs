//! Generate a preset, print its truth and timing, and write PGM previews (axial at three
//! levels and a coronal slice) into a folder: `cargo run -p ildtrack-phantom --example preview -- ild /tmp/prev`.
use ildtrack_phantom::{PhantomSpec, generate};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let name = args.get(1).map(String::as_str).unwrap_or("ild");
    let out = std::path::PathBuf::from(
        args.get(2)
            .map(String::as_str)
            .unwrap_or("/tmp/phantom-preview"),
    );
    let spec = if name == "demo" {
        let i: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(0);
        ildtrack_phantom::demo_patient()
            .get(i)
            .ok_or("no such visit")?
            .spec
            .clone()
    } else {
        PhantomSpec::preset(name).ok_or("unknown preset")?
    };
    let t = std::time::Instant::now();
    let ph = generate(&spec);
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    println!("{name}: {:?} generated in {ms:.0} ms", ph.volume.dims_zyx());
    println!("{}", serde_json::to_string_pretty(&ph.truth.summary())?);
    println!("extent {:?}", ph.truth.lung_z_extent);
    std::fs::create_dir_all(&out)?;
    if let Ok(dir) = std::env::var("PREVIEW_WRITE_DICOM") {
        let t = std::time::Instant::now();
        let files = ildtrack_phantom::write_dicom_series(
            &ph,
            std::path::Path::new(&dir),
            &ildtrack_phantom::WriteOptions::default(),
        )?;
        println!(
            "wrote {} files in {:.0} ms",
            files.len(),
            t.elapsed().as_secs_f64() * 1000.0
        );
    }
    let [nz, ny, nx] = ph.volume.dims_zyx();
    let win = |v: i16| -> u8 { (((v as f64 + 1000.0) / 1400.0).clamp(0.0, 1.0) * 255.0) as u8 };
    for (tag, frac) in [("low", 0.25), ("mid", 0.5), ("high", 0.72)] {
        let z = ((nz as f64 * frac) as usize).min(nz - 1);
        let px: Vec<u8> = (0..ny)
            .flat_map(|y| (0..nx).map(move |x| (y, x)))
            .map(|(y, x)| win(ph.volume.data[[z, y, x]]))
            .collect();
        save(&out.join(format!("{name}-axial-{tag}.png")), nx, ny, &px)?;
    }
    // Coronal at the lung centre row, resampled to square pixels.
    let yc = ny / 2 + ny / 20;
    let [sz, _, sx] = ph.volume.geometry.spacing_mm;
    let rows = ((nz as f64 * sz / sx) as usize).max(1);
    let mut px = Vec::with_capacity(rows * nx);
    for r in 0..rows {
        let z = nz - 1 - ((r as f64 * sx / sz) as usize).min(nz - 1);
        for x in 0..nx {
            px.push(win(ph.volume.data[[z, yc, x]]));
        }
    }
    save(&out.join(format!("{name}-coronal.png")), nx, rows, &px)?;
    Ok(())
}

fn save(
    path: &std::path::Path,
    w: usize,
    h: usize,
    px: &[u8],
) -> Result<(), Box<dyn std::error::Error>> {
    let f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut enc = png::Encoder::new(f, w as u32, h as u32);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header()?.write_image_data(px)?;
    Ok(())
}
