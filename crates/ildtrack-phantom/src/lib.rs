//! STATUS: not written yet (see ARCHITECTURE.md and the open issues).
