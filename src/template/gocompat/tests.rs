//! Rendering tests of the go_ functions through real templates.
