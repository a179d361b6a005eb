//! Hostile answer bodies that a JSON tensor decoder must refuse with a
//! typed error (issue 14's findings), and the assertion the decoders'
//! tests share, so each hostile shape is written once.

use std::fmt::Debug;

use inferlink::ErrorKind;

/// `{"<key>": …}` with arrays `width` wide and `depth` deep, where only the
/// first element of each array goes deeper (issue 14, finding 1): the
/// first row claims `width^depth` leaves while the body holds a few
/// thousand values.
pub fn first_row_bomb(key: &str, width: usize, depth: usize) -> String {
    let mut nested = "1".to_owned();
    for _ in 0..depth {
        let rest = ",1".repeat(width - 1);
        nested = format!("[{nested}{rest}]");
    }
    format!(r#"{{"{key}":{nested}}}"#)
}

/// Asserts that `decode` refuses first-row bombs under `key` with a
/// [`ErrorKind::Protocol`] error naming the ragged arrays, never an abort
/// or a panic: one whose claimed size is beyond memory (1000 wide, 5 deep:
/// 10^15 leaves from under 12 kB; 8 PB reserved before the fix) and two
/// whose size overflows `usize` (1000 wide, 7 deep; 65536 wide, 4 deep).
pub fn assert_refuses_first_row_bombs<T: Debug>(
    key: &str,
    decode: impl Fn(&[u8]) -> inferlink::Result<T>,
) {
    assert!(first_row_bomb(key, 1000, 5).len() < 12_000 + key.len());
    for (width, depth) in [(1000, 5), (1000, 7), (65536, 4)] {
        let e = decode(first_row_bomb(key, width, depth).as_bytes()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol, "{width}x{depth}: {e}");
        assert!(e.to_string().contains("ragged"), "{width}x{depth}: {e}");
    }
}
