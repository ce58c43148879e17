//! The IPVS data plane: the kernel's table as data and the pure reconcile that plans
//! how to bring it to the desired state without disturbing what this director does not
//! own. The netlink client that carries the plan out is the next step of this module.

pub mod client;
pub mod desired;
pub mod diff;
pub mod kernel;
pub mod netlink;
pub mod ownership;
pub mod quorum;
pub mod reconcile;
pub mod table;

pub use desired::{all_healthy, desired, literal_only, quorum_now};
pub use diff::{plan, Drains, Op, OpError, Plan};
pub use table::{
    Dest, DestConns, DestKey, DestParams, FwdMethod, Service, ServiceKey, ServiceParams, Stats,
    Table,
};
