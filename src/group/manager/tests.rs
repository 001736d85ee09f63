//! The group manager's flows, driven by hand: requests, the passing of time (timers), and the
//! durability of queued records (continuations run as the writer would run them).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{JoinGroupResponse, SyncGroupResponse};

use super::*;
use crate::group::consumer_protocol::tests::subscription;
use crate::group::records::decode_record;
use crate::group::{GroupState, Protocol, ResponseSlot};

const P: i32 = 7;
const SESSION_MS: i32 = 10_000;
const REBALANCE_MS: i32 = 30_000;
const DELAY_MS: i32 = 100;

struct Harness {
    manager: GroupManager,
    now: Now,
    /// Every record made durable, in log order.
    log: Vec<Record>,
}

fn config() -> GroupConfig {
    GroupConfig {
        min_session_timeout_ms: 1_000,
        max_session_timeout_ms: 100_000,
        initial_rebalance_delay_ms: DELAY_MS,
        offset_metadata_max_bytes: 16,
        offsets_retention_ms: 60_000,
        retention_check_interval: Duration::from_secs(600),
        write_queue_max: 8,
    }
}

fn harness() -> Harness {
    let mut manager = GroupManager::new(config());
    let now = Now { instant: std::time::Instant::now(), wall_ms: 1_000_000 };
    manager.begin_load(P);
    manager.finish_load(P, now);
    Harness { manager, now, log: Vec::new() }
}

fn range(topics: &[&str]) -> Vec<Protocol> {
    vec![Protocol { name: "range".into(), metadata: subscription(topics) }]
}

impl Harness {
    fn advance(&mut self, ms: u64) {
        self.now.instant += Duration::from_millis(ms);
        self.now.wall_ms += i64::try_from(ms).unwrap();
        self.manager.on_timers(self.now);
    }

    /// Makes every queued write durable, as the partition's writer would.
    fn flush(&mut self) {
        while self.manager.has_writes(P) {
            for write in self.manager.take_writes(P) {
                self.log.extend(write.records.iter().cloned());
                (write.then)(&mut self.manager, Ok(()), self.now);
            }
        }
    }

    /// Fails every queued write.
    fn fail_writes(&mut self) {
        for write in self.manager.take_writes(P) {
            (write.then)(&mut self.manager, Err(WriteError::NotCoordinator("test".into())), self.now);
        }
    }

    fn join(&mut self, group: &str, member_id: &str, version: i16, protocols: Vec<Protocol>) -> Rc<ResponseSlot<JoinGroupResponse>> {
        self.join_static(group, member_id, None, version, protocols)
    }

    fn join_static(&mut self, group: &str, member_id: &str, instance: Option<&str>, version: i16, protocols: Vec<Protocol>) -> Rc<ResponseSlot<JoinGroupResponse>> {
        let params = JoinParams {
            group_id: group.into(),
            member_id: member_id.into(),
            group_instance_id: instance.map(Into::into),
            protocol_type: "consumer".into(),
            protocols,
            session_timeout_ms: SESSION_MS,
            rebalance_timeout_ms: REBALANCE_MS,
            client_id: "client".into(),
            client_host: "/127.0.0.1".into(),
            reason: None,
            version,
        };
        self.manager.join_group(P, params, self.now)
    }

    /// A dynamic member joining with v5: MEMBER_ID_REQUIRED, then the join with its id.
    fn join_new(&mut self, group: &str, topics: &[&str]) -> (String, Rc<ResponseSlot<JoinGroupResponse>>) {
        let first = self.join(group, "", 5, range(topics)).take().expect("answered at once");
        assert_eq!(first.error_code, ResponseError::MemberIdRequired.code());
        let member_id = first.member_id.to_string();
        assert!(member_id.starts_with("client-"), "{member_id}");
        let slot = self.join(group, &member_id, 5, range(topics));
        (member_id, slot)
    }

    fn sync(&mut self, group: &str, member_id: &str, generation_id: i32, assignments: Vec<(&str, &'static [u8])>) -> Rc<ResponseSlot<SyncGroupResponse>> {
        let params = SyncParams {
            group_id: group.into(),
            generation_id,
            member_id: member_id.into(),
            group_instance_id: None,
            protocol_type: Some("consumer".into()),
            protocol_name: Some("range".into()),
            assignments: assignments.into_iter().map(|(m, a)| (m.to_owned(), Bytes::from_static(a))).collect(),
            version: 5,
        };
        self.manager.sync_group(P, params)
    }

    fn heartbeat(&mut self, group: &str, member_id: &str, generation_id: i32) -> Result<(), ResponseError> {
        self.manager.heartbeat(P, group, member_id, None, generation_id, self.now)
    }

    fn state(&self, group: &str) -> GroupState {
        self.manager.group(group).expect("group exists").state()
    }

    /// Two members, joined and synced: (leader, follower).
    fn stable_pair(&mut self, group: &str) -> (String, String) {
        let (a, join_a) = self.join_new(group, &["t"]);
        let (b, join_b) = self.join_new(group, &["t"]);
        self.flush();
        // b joined during the first delay, which is therefore extended once.
        self.advance(u64::try_from(DELAY_MS).unwrap());
        self.advance(u64::try_from(DELAY_MS).unwrap());
        let (ra, rb) = (join_a.take().unwrap(), join_b.take().unwrap());
        let (leader, follower) = if ra.leader == ra.member_id { (a, b) } else { (b, a) };
        let generation = ra.generation_id;
        let follower_sync = self.sync(group, &follower, generation, vec![]);
        let leader_sync = self.sync(group, &leader, generation, vec![(&leader, b"L"), (&follower, b"F")]);
        self.flush();
        assert_eq!(follower_sync.take().unwrap().assignment, Bytes::from_static(b"F"));
        assert_eq!(leader_sync.take().unwrap().assignment, Bytes::from_static(b"L"));
        assert_eq!(rb.generation_id, generation);
        (leader, follower)
    }

    fn commit(&mut self, group: &str, generation_id: i32, member_id: &str, offset: i64) -> Rc<ResponseSlot<CommitResult>> {
        let params = CommitParams {
            group_id: group.into(),
            generation_id,
            member_id: member_id.into(),
            group_instance_id: None,
            retention_time_ms: -1,
            topics: vec![("t".into(), vec![CommitPartition { partition: 0, offset, leader_epoch: -1, metadata: None }])],
            version: 8,
        };
        self.manager.commit_offsets(P, params, self.now)
    }

    fn committed(&self, group: &str) -> i64 {
        let fetched = self.manager.fetch_offsets(P, group, Some(vec![("t".into(), vec![0])]));
        fetched.topics[0].partitions[0].committed_offset
    }
}

fn code(result: &CommitResult) -> i16 {
    result[0].1[0].1
}

#[test]
fn a_first_join_from_v4_is_asked_for_a_member_id_and_earlier_versions_are_admitted_at_once() {
    let mut h = harness();
    let first = h.join("g", "", 4, range(&["t"])).take().unwrap();
    assert_eq!(first.error_code, ResponseError::MemberIdRequired.code());
    assert_eq!(h.state("g"), GroupState::Empty);
    let old = h.join("old", "", 3, range(&["t"]));
    assert!(!old.is_filled(), "parked in the initial rebalance");
    assert_eq!(h.state("old"), GroupState::PreparingRebalance);
}

#[test]
fn the_initial_rebalance_waits_for_its_delay_and_the_leader_sees_every_member() {
    let mut h = harness();
    let (a, join_a) = h.join_new("g", &["t"]);
    h.advance(50);
    let (b, join_b) = h.join_new("g", &["t"]);
    h.advance(60);
    assert!(!join_a.is_filled(), "a member joined during the delay: it is extended");
    h.advance(100);
    let (ra, rb) = (join_a.take().unwrap(), join_b.take().unwrap());
    assert_eq!((ra.error_code, rb.error_code), (0, 0));
    assert_eq!(ra.generation_id, 1);
    assert_eq!(ra.leader.as_str(), a);
    assert_eq!(ra.protocol_name.as_deref(), Some("range"));
    let mut seen: Vec<String> = ra.members.iter().map(|m| m.member_id.to_string()).collect();
    seen.sort();
    let mut expected = vec![a, b];
    expected.sort();
    assert_eq!(seen, expected);
    assert!(rb.members.is_empty(), "followers do not see the members");
    assert_eq!(h.state("g"), GroupState::CompletingRebalance);
}

#[test]
fn followers_get_their_assignment_only_once_the_leaders_is_durable() {
    let mut h = harness();
    let (leader, follower) = h.stable_pair("g");
    assert_eq!(h.state("g"), GroupState::Stable);
    let stored = h.log.iter().filter_map(|(k, v)| decode_record(Some(k), v.as_deref()).ok().flatten()).last().unwrap();
    let crate::group::records::CoordinatorRecord::GroupMetadata { value: Some(value), .. } = stored else { panic!("group record last") };
    assert_eq!(value.members.len(), 2);
    assert_eq!(value.leader.as_deref(), Some(leader.as_str()));
    let follower_member = value.members.iter().find(|m| m.member_id == follower).unwrap();
    assert_eq!(follower_member.assignment, Bytes::from_static(b"F"));
}

#[test]
fn a_failed_assignment_write_sends_the_members_back_to_rejoin() {
    let mut h = harness();
    let (a, join_a) = h.join_new("g", &["t"]);
    h.flush();
    h.advance(100);
    let generation = join_a.take().unwrap().generation_id;
    let sync = h.sync("g", &a, generation, vec![(&a, b"A")]);
    h.fail_writes();
    assert_eq!(sync.take().unwrap().error_code, ResponseError::NotCoordinator.code());
    assert_eq!(h.state("g"), GroupState::PreparingRebalance);
}

#[test]
fn heartbeats_are_told_of_rebalances_stale_generations_and_unknown_members() {
    let mut h = harness();
    let (leader, follower) = h.stable_pair("g");
    assert_eq!(h.heartbeat("g", &follower, 1), Ok(()));
    assert_eq!(h.heartbeat("g", &follower, 0), Err(ResponseError::IllegalGeneration));
    assert_eq!(h.heartbeat("g", "nobody", 1), Err(ResponseError::UnknownMemberId));
    assert_eq!(h.heartbeat("missing", "nobody", 1), Err(ResponseError::UnknownMemberId));
    // The leader rejoins (it may, to force a rebalance): the follower must rejoin too.
    let _rejoin = h.join("g", &leader, 5, range(&["t"]));
    assert_eq!(h.state("g"), GroupState::PreparingRebalance);
    assert_eq!(h.heartbeat("g", &follower, 1), Err(ResponseError::RebalanceInProgress));
    let stale = h.sync("g", &follower, 0, vec![]);
    assert_eq!(stale.take().unwrap().error_code, ResponseError::IllegalGeneration.code());
}

#[test]
fn a_silent_member_is_evicted_after_its_session_timeout_and_the_rest_rebalance() {
    let mut h = harness();
    let (leader, follower) = h.stable_pair("g");
    for _ in 0..3 {
        h.advance(3_000);
        assert_eq!(h.heartbeat("g", &leader, 1), Ok(()));
    }
    // The follower has been silent for 12 s, over its 10 s session.
    h.advance(3_000);
    assert!(h.manager.group("g").unwrap().member(&follower).is_none());
    assert_eq!(h.heartbeat("g", &leader, 1), Err(ResponseError::RebalanceInProgress));
    let rejoined = h.join("g", &leader, 5, range(&["t"])).take().expect("the only member: the join phase ends at once");
    assert_eq!((rejoined.generation_id, rejoined.members.len()), (2, 1));
}

#[test]
fn a_member_that_does_not_rejoin_within_the_rebalance_timeout_is_removed() {
    let mut h = harness();
    let (leader, follower) = h.stable_pair("g");
    let rejoin = h.join("g", &leader, 5, range(&["t"]));
    // The follower keeps heartbeating but never rejoins.
    for _ in 0..9 {
        h.advance(3_000);
        let _ = h.heartbeat("g", &follower, 1);
    }
    assert!(!rejoin.is_filled());
    h.advance(3_000);
    let answer = rejoin.take().expect("the join phase ended at the rebalance timeout");
    assert_eq!(answer.generation_id, 2);
    assert_eq!(answer.members.len(), 1);
    assert!(h.manager.group("g").unwrap().member(&follower).is_none());
}

#[test]
fn members_without_a_common_protocol_are_refused() {
    let mut h = harness();
    let _ = h.stable_pair("g");
    let other = vec![Protocol { name: "sticky".into(), metadata: Bytes::new() }];
    let answer = h.join("g", "", 5, other).take().unwrap();
    assert_eq!(answer.error_code, ResponseError::InconsistentGroupProtocol.code());
    let empty = h.join("fresh", "", 5, Vec::new()).take().unwrap();
    assert_eq!(empty.error_code, ResponseError::InconsistentGroupProtocol.code());
}

#[test]
fn a_restarted_static_member_takes_its_place_without_a_rebalance() {
    let mut h = harness();
    let first = h.join_static("g", "", Some("instance-1"), 5, range(&["t"]));
    h.flush();
    h.advance(100);
    let joined = first.take().unwrap();
    let old_id = joined.member_id.to_string();
    assert!(old_id.starts_with("instance-1-"));
    let sync = h.sync("g", &old_id, joined.generation_id, vec![(&old_id, b"mine")]);
    h.flush();
    assert_eq!(sync.take().unwrap().assignment, Bytes::from_static(b"mine"));
    let again = h.join_static("g", "", Some("instance-1"), 9, range(&["t"]));
    assert!(!again.is_filled(), "waits for the new member id to be durable");
    h.flush();
    let answer = again.take().unwrap();
    assert_eq!(answer.error_code, 0);
    assert_ne!(answer.member_id.to_string(), old_id);
    assert_eq!(answer.generation_id, joined.generation_id, "no new generation");
    assert!(answer.skip_assignment, "the leader keeps the assignment as it is");
    assert_eq!(h.state("g"), GroupState::Stable);
    let fenced = h.manager.heartbeat(P, "g", &old_id, Some("instance-1"), answer.generation_id, h.now);
    assert_eq!(fenced, Err(ResponseError::FencedInstanceId));
    let new_sync = h.sync("g", &answer.member_id.to_string(), answer.generation_id, vec![]);
    assert_eq!(new_sync.take().unwrap().assignment, Bytes::from_static(b"mine"));
    // Before v9 the rejoined leader is shown the old leader id, so it does not reassign.
    let before_v9 = h.join_static("g", "", Some("instance-1"), 5, range(&["t"]));
    h.flush();
    let answer_v5 = before_v9.take().unwrap();
    assert_eq!(answer_v5.leader.to_string(), answer.member_id.to_string());
    assert!(!answer_v5.skip_assignment);
}

#[test]
fn commits_are_visible_once_durable_and_check_the_generation() {
    let mut h = harness();
    let (leader, _) = h.stable_pair("g");
    let commit = h.commit("g", 1, &leader, 42);
    assert!(!commit.is_filled());
    assert_eq!(h.committed("g"), -1, "not durable yet");
    h.flush();
    assert_eq!(code(&commit.take().unwrap()), 0);
    assert_eq!(h.committed("g"), 42);
    assert_eq!(code(&h.commit("g", 0, &leader, 50).take().unwrap()), ResponseError::IllegalGeneration.code());
    assert_eq!(code(&h.commit("g", 1, "stranger", 50).take().unwrap()), ResponseError::UnknownMemberId.code());
    assert_eq!(code(&h.commit("g", -1, "", 50).take().unwrap()), ResponseError::UnknownMemberId.code(), "the group has members");
    assert_eq!(code(&h.commit("nogroup", 3, "m", 1).take().unwrap()), ResponseError::IllegalGeneration.code());
    assert_eq!(h.committed("g"), 42);
}

#[test]
fn a_simple_commit_creates_an_empty_group_and_survives_a_reload() {
    let mut h = harness();
    let commit = h.commit("simple", -1, "", 7);
    h.flush();
    assert_eq!(code(&commit.take().unwrap()), 0);
    assert_eq!(h.state("simple"), GroupState::Empty);
    let _ = h.stable_pair("g");
    let leader = h.manager.group("g").unwrap().leader_id().unwrap().to_owned();
    let commit = h.commit("g", 1, &leader, 99);
    h.flush();
    assert_eq!(code(&commit.take().unwrap()), 0);

    let mut reloaded = GroupManager::new(config());
    reloaded.begin_load(P);
    assert_eq!(reloaded.check_partition(P), Err(ResponseError::CoordinatorLoadInProgress));
    for (key, value) in &h.log {
        if let Some(record) = decode_record(Some(key), value.as_deref()).unwrap() {
            reloaded.replay(P, record, h.now);
        }
    }
    reloaded.finish_load(P, h.now);
    let fetched = reloaded.fetch_offsets(P, "simple", Some(vec![("t".into(), vec![0])]));
    assert_eq!(fetched.topics[0].partitions[0].committed_offset, 7);
    let g = reloaded.group("g").unwrap();
    assert_eq!((g.state(), g.num_members(), g.generation_id), (GroupState::Stable, 2, 1));
    assert_eq!(reloaded.fetch_offsets(P, "g", None).topics[0].partitions[0].committed_offset, 99);
}

#[test]
fn oversized_metadata_is_refused_per_partition() {
    let mut h = harness();
    let params = CommitParams {
        group_id: "s".into(),
        generation_id: -1,
        member_id: String::new(),
        group_instance_id: None,
        retention_time_ms: -1,
        topics: vec![(
            "t".into(),
            vec![
                CommitPartition { partition: 0, offset: 1, leader_epoch: -1, metadata: Some("x".repeat(17)) },
                CommitPartition { partition: 1, offset: 1, leader_epoch: -1, metadata: Some("ok".into()) },
            ],
        )],
        version: 8,
    };
    let slot = h.manager.commit_offsets(P, params, h.now);
    h.flush();
    let result = slot.take().unwrap();
    assert_eq!(result[0].1, vec![(0, ResponseError::OffsetMetadataTooLarge.code()), (1, 0)]);
}

#[test]
fn only_empty_groups_are_deleted_and_their_offsets_go_with_them() {
    let mut h = harness();
    let (leader, follower) = h.stable_pair("g");
    let commit = h.commit("g", 1, &leader, 5);
    h.flush();
    assert_eq!(code(&commit.take().unwrap()), 0);
    let refused = h.manager.delete_groups(P, vec!["g".into(), "missing".into()]).take().unwrap();
    assert_eq!(refused, vec![("g".into(), ResponseError::NonEmptyGroup.code()), ("missing".into(), ResponseError::GroupIdNotFound.code())]);
    let left = h.manager.leave_group(P, "g", vec![LeavingMember { member_id: leader, group_instance_id: None, reason: None }], h.now);
    assert_eq!(left.members[0].error_code, 0);
    let _ = h.manager.leave_group(P, "g", vec![LeavingMember { member_id: follower, group_instance_id: None, reason: None }], h.now);
    h.flush();
    assert_eq!(h.state("g"), GroupState::Empty);
    let deleted = h.manager.delete_groups(P, vec!["g".into()]);
    assert_eq!(h.state("g"), GroupState::Dead);
    h.flush();
    assert_eq!(deleted.take().unwrap(), vec![("g".into(), 0)]);
    assert!(h.manager.group("g").is_none());
    assert_eq!(h.committed("g"), -1);
    let tombstones = h.log.iter().rev().take(2).filter(|(_, v)| v.is_none()).count();
    assert_eq!(tombstones, 2, "the offset and the group are tombstoned");
}

#[test]
fn offsets_of_an_empty_group_expire_after_the_retention_and_the_group_with_them() {
    let mut h = harness();
    let commit = h.commit("simple", -1, "", 3);
    h.flush();
    assert_eq!(code(&commit.take().unwrap()), 0);
    h.manager.schedule_expiration(h.now);
    h.advance(600_000);
    h.flush();
    assert!(h.manager.group("simple").is_none());
    assert_eq!(h.committed("simple"), -1);
}

#[test]
fn a_stopping_coordinator_answers_parked_joins_not_coordinator() {
    let mut h = harness();
    let (_, join) = h.join_new("g", &["t"]);
    h.manager.shutdown();
    assert_eq!(join.take().unwrap().error_code, ResponseError::NotCoordinator.code());
    assert_eq!(h.heartbeat("g", "x", 1), Err(ResponseError::NotCoordinator));
}
