//! The integration tests of ildtrack-gpu (one binary, see the modules).

mod common;
mod parity;
mod shaders;
