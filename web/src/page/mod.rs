//! The page (the `app` binary): DOM, controls and drawing; no tensor work. Layers without
//! circles: [`dom`] (helpers) → [`model`] (state) → [`controls`] (dropdowns, gallery, facts,
//! selection) → [`view`] (drawing) → [`actions`] (requests and answers) → [`events`]
//! (handlers); [`start`] joins the last two.

pub mod actions;
pub mod controls;
pub mod dom;
pub mod events;
pub mod model;
pub mod view;

/// Page entry point: shows panics in the page, loads the manifest, starts the worker, and wires
/// the event handlers once the worker is ready.
pub fn start() {
    actions::start(events::wire_events);
}
