use futures_lite::future::block_on;
use proptest::prelude::*;

use super::*;

const MAX: i32 = 4096;

fn read(input: &[u8]) -> Result<Bytes, FrameError> {
    let mut reader = input;
    block_on(read_frame(&mut reader, MAX))
}

fn framed(body: &[u8]) -> Vec<u8> {
    let mut frame = i32::try_from(body.len()).unwrap().to_be_bytes().to_vec();
    frame.extend_from_slice(body);
    frame
}

proptest! {
    #[test]
    fn any_bytes_give_a_frame_of_the_announced_size_or_an_error(input in proptest::collection::vec(any::<u8>(), 0..6000)) {
        match read(&input) {
            Ok(frame) => {
                let size = i32::from_be_bytes(input[..4].try_into().unwrap());
                prop_assert!((8..=MAX).contains(&size));
                prop_assert_eq!(&frame[..], &input[4..4 + frame.len()]);
                prop_assert_eq!(frame.len(), usize::try_from(size).unwrap());
            }
            Err(FrameError::Closed) => prop_assert!(input.len() < 4),
            Err(FrameError::Size { size, .. }) => prop_assert!(!(8..=MAX).contains(&size)),
            Err(FrameError::Truncated { size, read }) => {
                prop_assert_eq!(read, input.len() - 4);
                prop_assert!(read < usize::try_from(size).unwrap());
            }
            Err(FrameError::Io(e)) => prop_assert!(false, "a slice cannot fail to read: {e}"),
        }
    }

    #[test]
    fn a_frame_within_bounds_reads_back_whole(body in proptest::collection::vec(any::<u8>(), 8..=4096)) {
        prop_assert_eq!(&read(&framed(&body)).unwrap()[..], &body[..]);
    }

    #[test]
    fn a_frame_cut_short_is_truncated_not_padded(body in proptest::collection::vec(any::<u8>(), 8..512), cut in 1usize..512) {
        let mut input = framed(&body);
        input.truncate(input.len() - cut.min(body.len()));
        prop_assert!(matches!(read(&input), Err(FrameError::Truncated { .. })), "{:?}", read(&input));
    }

    #[test]
    fn a_size_outside_the_bounds_is_refused_before_any_body_is_read(
        size in prop_oneof![i32::MIN..8, (MAX + 1)..=i32::MAX],
    ) {
        let err = read(&size.to_be_bytes()).unwrap_err();
        prop_assert!(matches!(err, FrameError::Size { size: s, max: MAX } if s == size), "{err}");
    }
}

#[test]
fn end_of_stream_between_frames_is_a_clean_close() {
    assert!(matches!(read(&[]), Err(FrameError::Closed)));
    assert!(matches!(read(&[0, 0]), Err(FrameError::Closed)));
}

#[test]
fn a_frame_larger_than_the_first_buffer_reads_back_whole_into_its_own_size() {
    let body: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
    let mut reader = &framed(&body)[..];
    let frame = block_on(read_frame(&mut reader, 1 << 20)).unwrap();
    assert_eq!(&frame[..], &body[..]);
}
