//! Which `__consumer_offsets` partition a group belongs to, by Kafka's own formula
//! (`Utils.abs(groupId.hashCode()) % partitions`), so a group keeps its partition, and with it
//! its stored state, for as long as the partition count stays the same. The shard that owns
//! that partition owns the group.

/// Java's `String.hashCode`: `h = 31 * h + c` over the UTF-16 code units, wrapping.
pub fn java_string_hash(text: &str) -> i32 {
    text.encode_utf16().fold(0i32, |hash, unit| hash.wrapping_mul(31).wrapping_add(i32::from(unit)))
}

/// Kafka's `Utils.abs`: `Math.abs` except that `i32::MIN` maps to 0.
fn kafka_abs(n: i32) -> i32 {
    if n == i32::MIN {
        0
    } else {
        n.abs()
    }
}

/// The `__consumer_offsets` partition of `group_id` among `partitions`.
pub fn offsets_partition_for(group_id: &str, partitions: i32) -> i32 {
    assert!(partitions > 0, "__consumer_offsets has at least one partition");
    kafka_abs(java_string_hash(group_id)) % partitions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_match_javas_string_hash_code() {
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("hello"), 99_162_322);
        assert_eq!(java_string_hash("my-group"), -1_906_497_762);
        // Outside the BMP a character is two UTF-16 units, as in Java.
        assert_eq!(java_string_hash("\u{1F600}"), 1_772_899);
    }

    #[test]
    fn a_hash_of_i32_min_lands_on_partition_zero_as_in_kafka() {
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
        assert_eq!(offsets_partition_for("polygenelubricants", 50), 0);
    }

    #[test]
    fn negative_hashes_take_their_absolute_value() {
        assert_eq!(offsets_partition_for("my-group", 50), 1_906_497_762 % 50);
    }
}
