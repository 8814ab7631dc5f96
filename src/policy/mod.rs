//! Policies: the YAML stacks that decide every spend request (SPEC §5).
//!
//! [`model`] holds validated stacks, [`engine`] decides (pure), [`load`]
//! turns `policies/*.yaml` into a [`model::PolicySet`], [`live`] keeps the set
//! in force and reloads it, [`testing`] runs the policy tests kept in
//! `policies/tests/`, and [`schema`] describes the stack format for editors.

pub mod caps;
pub mod engine;
pub mod live;
pub mod load;
pub mod model;
mod node;
pub mod schema;
pub mod testing;
pub mod usage;
