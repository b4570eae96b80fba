//! Integration tests of `ildtrack-report` (one binary, modules below).

mod browser;
mod common;
mod pages;
