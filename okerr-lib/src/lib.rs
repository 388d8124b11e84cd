#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod action;
pub mod active;
mod batch;
pub mod clock;
pub mod duration;
pub mod engine;
pub mod indicator;
pub mod logic;
pub mod memory;
pub mod method;
pub mod name;
pub mod notify;
pub mod outbound;
pub mod outbox;
pub mod project;
pub mod pyfmt;
pub mod reduction;
pub mod retention;
pub mod sensor;
pub mod settings;
pub mod storage;
pub mod summary;
mod timefmt;
pub mod update;

#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod conformance;
#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod testing;

pub use action::{
    Action, ActionError, decide_action, decide_actions, decide_create, decide_expiry,
};
pub use active::{ActiveArgs, ActiveMethod, METHODS, MethodInfo};
pub use clock::{Clock, SystemClock};
pub use duration::{DurationError, Interval, RetrySchedule};
pub use engine::{
    BATCH_LONGEST_WAIT, EditError, Engine, EngineBuilder, EngineConfig, NoFlap, RefusedUpdate,
    TickReport,
};
pub use indicator::{HeldAlert, Indicator, IndicatorId, LogKind, LogLine, Status, Timing};
pub use memory::{MemorySnapshot, MemoryStorage};
pub use method::{CheckMethod, LogicArgs, MethodError, MethodKind};
pub use name::{Email, IndicatorName, NameError, PolicyName, Secret, Tag, TextId};
pub use notify::{DeliveryReport, Notifier, NotifyError};
pub use outbound::{OutboundNet, OutboundNetworks, OutboundRefused};
pub use outbox::{Notification, NotificationId, OutboxEntry, Payload, StatusChange};
pub use project::{ApiKey, Member, NewProject, Policy, Project, ProjectId, Source};
pub use reduction::{Reduction, ReductionError};
pub use retention::{PruneReport, Retention};
pub use sensor::{CheckResult, Sensor, decide_check};
pub use settings::{AutocreateRate, Settings};
pub use storage::{Commit, GroupResult, Pruned, Storage, StorageError};
pub use summary::ProjectSummary;
pub use update::{UpdateError, UpdateOutcome, UpdateRequest, decide_update};
