//! Tiny generated files for the smoke run's file-input services (`blip`, `grounding_dino`,
//! `whisper`): a valid 8×8 PNG and a 0.1 s WAV, made in code so no fixture ships with the host.

use serde_json::{Value, json};

/// A file the smoke run uploads (theta.ondemand.upload) before it calls `infer`.
#[derive(Clone, Debug, PartialEq)]
pub struct UploadInput {
    pub field: &'static str,
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
    /// The rest of the `infer` input; the uploaded file name goes under `field`.
    pub input: Value,
}

/// The upload a service's cheap smoke call needs, if it takes a file.
pub fn upload_input(service: &str) -> Option<UploadInput> {
    let (field, bytes, content_type, input) = match service {
        "blip" => ("input_img", tiny_png(), "image/png", json!({})),
        "grounding_dino" => (
            "input_img",
            tiny_png(),
            "image/png",
            json!({"detection_prompt": "square"}),
        ),
        "whisper" => ("audio_filename", tiny_wav(), "audio/wav", json!({})),
        _ => return None,
    };
    Some(UploadInput {
        field,
        bytes,
        content_type,
        input,
    })
}

/// An 8×8 blue RGB PNG: signature, IHDR, one IDAT (zlib with a stored block), IEND.
pub fn tiny_png() -> Vec<u8> {
    const SIDE: u32 = 8;
    // Each row: filter byte 0 (none), then the pixels.
    let row: Vec<u8> = std::iter::once(0)
        .chain([0x20, 0x60, 0xe0].repeat(SIDE as usize))
        .collect();
    let raw = row.repeat(SIDE as usize);
    let mut zlib = vec![0x78, 0x01, 0x01];
    let len = raw.len() as u16;
    zlib.extend_from_slice(&len.to_le_bytes());
    zlib.extend_from_slice(&(!len).to_le_bytes());
    zlib.extend_from_slice(&raw);
    zlib.extend_from_slice(&adler32(&raw).to_be_bytes());
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&SIDE.to_be_bytes());
    ihdr.extend_from_slice(&SIDE.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB, no interlace
    let mut png = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
    for (kind, data) in [(b"IHDR", ihdr), (b"IDAT", zlib), (b"IEND", Vec::new())] {
        png.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut chunk = kind.to_vec();
        chunk.extend_from_slice(&data);
        png.extend_from_slice(&chunk);
        png.extend_from_slice(&crc32(&chunk).to_be_bytes());
    }
    png
}

/// 0.1 s of a quiet 440 Hz tone: 16 kHz mono 16-bit PCM WAV.
pub fn tiny_wav() -> Vec<u8> {
    const RATE: u32 = 16_000;
    let samples: Vec<i16> = (0..RATE / 10)
        .map(|i| {
            let t = i as f64 / f64::from(RATE);
            ((t * 440.0 * std::f64::consts::TAU).sin() * 2000.0) as i16
        })
        .collect();
    let data_len = (samples.len() * 2) as u32;
    let mut wav = Vec::with_capacity(44 + data_len as usize);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data_len).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&RATE.to_le_bytes());
    wav.extend_from_slice(&(RATE * 2).to_le_bytes());
    wav.extend_from_slice(&2u16.to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        wav.extend_from_slice(&s.to_le_bytes());
    }
    wav
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn adler32(bytes: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &x in bytes {
        a = (a + u32::from(x)) % 65_521;
        b = (b + a) % 65_521;
    }
    b << 16 | a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_files_are_well_formed() {
        // The CRC of "IEND" alone is fixed by the PNG spec.
        assert_eq!(crc32(b"IEND"), 0xae42_6082);
        let png = tiny_png();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert!(png.ends_with(&[0xae, 0x42, 0x60, 0x82]));
        let wav = tiny_wav();
        assert_eq!(&wav[..4], b"RIFF");
        assert_eq!(wav.len(), 44 + 3200);
        assert!(upload_input("whisper").is_some());
        assert!(upload_input("flux").is_none());
    }
}
