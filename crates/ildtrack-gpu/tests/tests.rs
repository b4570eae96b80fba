//! The integration tests of ildtrack-gpu (one binary, see the modules).
//!
//! Without an adapter the GPU tests print "skipped: no wgpu adapter" and pass, except under
//! `CI=true`, where they fail: CI installs Mesa's lavapipe so they always run there.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod end_to_end;
mod parity;
mod props;
mod real_data;
mod register;
mod shaders;
