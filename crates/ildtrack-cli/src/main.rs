//! `ildtrack`: quantitative chest CT for interstitial lung disease.
fn main() -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
