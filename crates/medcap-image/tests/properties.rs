//! Image files from strangers: any bytes decode or are refused with an
//! error, never a panic or an abort; a header declaring an absurd size is
//! refused before any pixel is allocated.

use medcap_image::{DecodeError, decode, dimensions};
use proptest::prelude::*;

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// The IHDR chunk of a PNG of `width` x `height` (CRC of the chunk type and
/// data, as the format wants it).
fn ihdr(width: u32, height: u32, depth: u8, colour: u8) -> Vec<u8> {
    let mut data = b"IHDR".to_vec();
    data.extend(width.to_be_bytes());
    data.extend(height.to_be_bytes());
    data.extend([depth, colour, 0, 0, 0]);
    let mut chunk = 13u32.to_be_bytes().to_vec();
    chunk.extend(&data);
    chunk.extend(crc32(&data).to_be_bytes());
    chunk
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A baseline JPEG's start (SOI, SOF0 of `width` x `height`, 3 components).
fn jpeg_start(width: u16, height: u16) -> Vec<u8> {
    let mut b = vec![0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x11, 0x08];
    b.extend(height.to_be_bytes());
    b.extend(width.to_be_bytes());
    b.extend([3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
    b
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, rng_seed: proptest::test_runner::RngSeed::Fixed(0x6d65_6463_6170), ..ProptestConfig::default() })]

    /// Any bytes, with or without a format's signature in front.
    #[test]
    fn any_bytes_decode_or_are_refused(
        prefix in prop_oneof![Just(Vec::new()), Just(PNG_SIGNATURE.to_vec()), Just(vec![0xFF, 0xD8, 0xFF])],
        body in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        let mut bytes = prefix;
        bytes.extend(body);
        if let Ok(decoded) = decode(&bytes) {
            let image = decoded.image;
            prop_assert_eq!(image.pixels.len(), 3 * image.width * image.height);
        }
        let _ = dimensions(&bytes);
    }

    /// A well-formed PNG header with any size, depth and colour type, then
    /// garbage: the size is read, an absurd one refused as too large, and
    /// the rest is an error, not a panic.
    #[test]
    fn a_png_header_of_any_size_is_checked_before_decoding(
        width in prop_oneof![1u32..64, Just(u32::MAX), 40_000u32..2_000_000],
        height in prop_oneof![1u32..64, Just(u32::MAX), 40_000u32..2_000_000],
        depth in prop::sample::select(vec![1u8, 2, 4, 8, 16, 3]),
        colour in prop::sample::select(vec![0u8, 2, 3, 4, 6, 5]),
        tail in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut bytes = PNG_SIGNATURE.to_vec();
        bytes.extend(ihdr(width, height, depth, colour));
        bytes.extend(tail);
        let result = decode(&bytes);
        if u64::from(width) * u64::from(height) > 2 * medcap_image::PILLOW_MAX_IMAGE_PIXELS {
            prop_assert!(matches!(result, Err(DecodeError::TooLarge { .. })), "{}x{}: {:?}", width, height, result.err());
        }
    }

    /// The same for a JPEG frame header.
    #[test]
    fn a_jpeg_header_of_any_size_is_checked_before_decoding(
        width in any::<u16>(),
        height in any::<u16>(),
        tail in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut bytes = jpeg_start(width, height);
        bytes.extend(tail);
        let _ = decode(&bytes);
        let _ = dimensions(&bytes);
    }
}

/// Found by the properties above: a PNG declaring 4294967295 x 1 pixels and
/// nothing after its header was reported as truncated; it is a bomb, as
/// Pillow says on open.
#[test]
fn a_bomb_header_without_data_is_too_large_not_truncated() {
    let mut bytes = PNG_SIGNATURE.to_vec();
    bytes.extend(ihdr(u32::MAX, 1, 1, 0));
    assert!(matches!(decode(&bytes), Err(DecodeError::TooLarge { .. })));
    assert_eq!(dimensions(&bytes).unwrap().1, u32::MAX);
}

/// Found by fuzzing (`cargo xtask fuzz`): a palette image whose PLTE chunk
/// is 49 bytes made the png crate panic reading past the palette. It is
/// refused as corrupt, naming the chunk.
#[test]
fn a_palette_that_is_not_whole_entries_is_corrupt_not_a_panic() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/regressions/image_decode/crash-ad4066da841fe3108fecc9eba3a816c1618de069");
    let bytes = std::fs::read(&path).unwrap();
    match decode(&bytes) {
        Err(DecodeError::Corrupt(why)) => assert!(why.contains("PLTE chunk of 49 bytes"), "{why}"),
        other => panic!("{other:?}"),
    }
}
