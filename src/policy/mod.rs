//! Policies: the YAML stacks that decide every spend request (SPEC §5).
//!
//! [`model`] holds validated stacks, [`engine`] decides (pure), and the
//! loader turns `policies/*.yaml` into a [`model::PolicySet`].

pub mod engine;
pub mod live;
pub mod load;
pub mod model;
