//! The states of a classic group, with Kafka's names and allowed transitions.
//!
//! ```text
//!  Empty ──join──> PreparingRebalance ──all joined──> CompletingRebalance ──leader sync──> Stable
//!    ^                 ^   |  (no member left)              |                               |
//!    └─────────────────┼───┘                                └──── member change ────────────┤
//!                      └────────────────────────────────────────────────────────────────────┘
//!  any state ──delete / expiry──> Dead
//! ```

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupState {
    /// No members; committed offsets may remain.
    Empty,
    /// Members are (re)joining; the join phase waits for all of them, bounded by the rebalance
    /// timeout.
    PreparingRebalance,
    /// The join phase ended; the leader computes the assignment and returns it in SyncGroup.
    CompletingRebalance,
    /// Every member has its assignment for the current generation.
    Stable,
    /// Being deleted; requests for it are told to retry.
    Dead,
}

impl GroupState {
    /// Kafka's name, as DescribeGroups and ListGroups report it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Empty => "Empty",
            Self::PreparingRebalance => "PreparingRebalance",
            Self::CompletingRebalance => "CompletingRebalance",
            Self::Stable => "Stable",
            Self::Dead => "Dead",
        }
    }

    /// Whether a group may move from `from` to `self` (Kafka's `validPreviousStates`).
    pub fn may_follow(self, from: GroupState) -> bool {
        use GroupState::*;
        match self {
            Empty => from == PreparingRebalance,
            PreparingRebalance => matches!(from, Stable | CompletingRebalance | Empty),
            CompletingRebalance => from == PreparingRebalance,
            Stable => from == CompletingRebalance,
            Dead => true,
        }
    }
}

impl fmt::Display for GroupState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::GroupState::*;

    #[test]
    fn a_rebalance_runs_through_the_states_in_order() {
        assert!(PreparingRebalance.may_follow(Empty));
        assert!(CompletingRebalance.may_follow(PreparingRebalance));
        assert!(Stable.may_follow(CompletingRebalance));
        assert!(PreparingRebalance.may_follow(Stable));
        assert!(Empty.may_follow(PreparingRebalance));
    }

    #[test]
    fn shortcuts_between_states_are_refused() {
        assert!(!Stable.may_follow(Empty));
        assert!(!CompletingRebalance.may_follow(Stable));
        assert!(!Empty.may_follow(Stable));
        assert!(!PreparingRebalance.may_follow(Dead));
    }

    #[test]
    fn states_use_kafkas_names() {
        assert_eq!(CompletingRebalance.to_string(), "CompletingRebalance");
        assert_eq!(PreparingRebalance.name(), "PreparingRebalance");
    }
}
