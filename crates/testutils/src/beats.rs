//! Beat-grid blobs as Mixxx writes them (its `beats.proto`), encoded by hand so tests do not
//! check the product's decoder against itself.

/// A protobuf varint.
fn varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7F) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// `Beat {frame_position}`; int32 goes on the wire sign-extended to 64 bits.
fn beat(frame: i32) -> Vec<u8> {
    let mut out = vec![0x08];
    varint(&mut out, frame as i64 as u64);
    out
}

/// A `BeatGrid-2.0` blob: `BeatGrid {bpm {bpm: f64}, first_beat {frame_position}}`, the
/// bytes Mixxx 2.3 writes (`beatgrid_blob(126.5, 0)` = `0a 09 09 <126.5 LE> 12 02 08 00`).
pub fn beatgrid_blob(bpm: f64, first_frame: i32) -> Vec<u8> {
    let mut out = vec![0x0A, 0x09, 0x09];
    out.extend_from_slice(&bpm.to_le_bytes());
    let first = beat(first_frame);
    out.push(0x12);
    varint(&mut out, first.len() as u64);
    out.extend_from_slice(&first);
    out
}

/// A `BeatMap-1.0` blob: `BeatMap {repeated Beat beat}`.
pub fn beatmap_blob(frames: &[i32]) -> Vec<u8> {
    let mut out = Vec::new();
    for &f in frames {
        let b = beat(f);
        out.push(0x0A);
        varint(&mut out, b.len() as u64);
        out.extend_from_slice(&b);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grid_mixxx_wrote_in_the_roundtrip() {
        // Seen in a real Mixxx 2.3.3 database: bpm 126.5, first beat at frame 0.
        assert_eq!(
            beatgrid_blob(126.5, 0),
            [
                0x0A, 0x09, 0x09, 0, 0, 0, 0, 0, 0xA0, 0x5F, 0x40, 0x12, 0x02, 0x08, 0x00
            ]
        );
        assert_eq!(
            beatgrid_blob(128.0, 300)[11..],
            [0x12, 0x03, 0x08, 0xAC, 0x02]
        );
        assert_eq!(
            beatmap_blob(&[1, 2]),
            [0x0A, 0x02, 0x08, 1, 0x0A, 0x02, 0x08, 2]
        );
    }
}
