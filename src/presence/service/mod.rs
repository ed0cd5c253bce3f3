//! Presence rules. A change is one conditional UPDATE and one event published in the same
//! transaction, so every real change is announced exactly once and no non-change is.
//! Lapses are decided by stored state (deadlines, open sockets, instance heartbeats) that a
//! sweep on every instance applies, so a lapse neither fires twice nor is lost when an
//! instance stops.
//!
//! `report`: what a workspace reports, and taking agents offline; `instances`: start-up
//! recovery, the heartbeat and the sweeps; `sockets`: counting signed-in sockets for the
//! last-socket lapse; `watch`: the live feed a subscriber reads; `history`: past changes;
//! `common`: the errors, the clock and recording a change, which they all share.

mod common;
mod history;
mod instances;
mod report;
mod sockets;
mod watch;

pub use self::{
    common::{MAX_FILTER_IDS, PresenceError},
    history::history,
    instances::{
        recover_after_restart, register_instance, retire_instance, spawn_history_pruner, spawn_sweeper,
        sweep, sweep_statements,
    },
    report::{report, take_offline},
    sockets::{Instance, OpenSocket, close_statements, socket_closed, socket_opened},
    watch::{filter, notice_agent, watch},
};
