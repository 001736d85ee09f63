//! Tests of a classic group's membership, leadership and protocol rules.

use super::super::member::tests::{member, protocol};
use super::*;

fn group_with(members: Vec<Member>) -> ClassicGroup {
    let mut group = ClassicGroup::new("g", 0, 0);
    for m in members {
        group.add(m, None);
    }
    group
}

#[test]
fn the_first_member_sets_the_protocol_type_and_leads() {
    let group = group_with(vec![member("a", vec![protocol("range", b"")]), member("b", vec![protocol("range", b"")])]);
    assert_eq!(group.protocol_type(), Some("consumer"));
    assert_eq!(group.leader_id(), Some("a"));
}

#[test]
fn removing_the_leader_passes_leadership_on() {
    let mut group = group_with(vec![member("a", vec![protocol("range", b"")]), member("b", vec![protocol("range", b"")])]);
    group.remove("a");
    assert_eq!(group.leader_id(), Some("b"));
    group.remove("b");
    assert_eq!(group.leader_id(), None);
}

#[test]
fn a_static_member_is_validated_against_its_current_member_id() {
    let mut m = member("i-1", vec![protocol("range", b"")]);
    m.group_instance_id = Some("i".into());
    let mut group = group_with(vec![m]);
    assert_eq!(group.validate_member("i-1", Some("i")), Ok(()));
    assert_eq!(group.validate_member("i-0", Some("i")), Err(ResponseError::FencedInstanceId));
    assert_eq!(group.validate_member("x", Some("other")), Err(ResponseError::UnknownMemberId));
    assert_eq!(group.validate_member("x", None), Err(ResponseError::UnknownMemberId));
    group.replace_static_member("i", "i-1", "i-2");
    assert_eq!(group.static_member_id("i"), Some("i-2"));
    assert_eq!(group.validate_member("i-1", Some("i")), Err(ResponseError::FencedInstanceId));
    assert_eq!(group.leader_id(), Some("i-2"));
}

#[test]
fn replacing_a_static_member_fences_its_parked_join() {
    let mut m = member("i-1", vec![protocol("range", b"")]);
    m.group_instance_id = Some("i".into());
    let slot = ResponseSlot::new();
    let mut group = ClassicGroup::new("g", 0, 0);
    group.add(m, Some(Rc::clone(&slot)));
    group.replace_static_member("i", "i-1", "i-2");
    assert_eq!(slot.take().map(|r| r.error_code), Some(ResponseError::FencedInstanceId.code()));
}

#[test]
fn the_join_phase_is_complete_when_every_member_and_no_pending_one_has_joined() {
    let mut group = ClassicGroup::new("g", 0, 0);
    group.add(member("a", vec![protocol("range", b"")]), Some(ResponseSlot::new()));
    group.add(member("b", vec![protocol("range", b"")]), None);
    assert!(!group.has_all_members_joined());
    assert_eq!(group.not_yet_rejoined_dynamic_members(), ["b"]);
    group.update_member("b", vec![protocol("range", b"")], 1, 1, Some(ResponseSlot::new()));
    assert!(group.has_all_members_joined());
    group.add_pending_member("c");
    assert!(!group.has_all_members_joined());
}

#[test]
fn a_leader_that_did_not_rejoin_is_replaced_by_one_that_did() {
    let mut group = ClassicGroup::new("g", 0, 0);
    group.add(member("a", vec![protocol("range", b"")]), None);
    group.add(member("b", vec![protocol("range", b"")]), Some(ResponseSlot::new()));
    assert!(group.maybe_elect_new_joined_leader());
    assert_eq!(group.leader_id(), Some("b"));
    let mut nobody = group_with(vec![member("a", vec![protocol("range", b"")])]);
    assert!(!nobody.maybe_elect_new_joined_leader());
}

#[test]
#[should_panic(expected = "cannot move from Empty to Stable")]
fn an_illegal_transition_is_a_bug() {
    ClassicGroup::new("g", 0, 0).transition_to(GroupState::Stable, 1);
}
