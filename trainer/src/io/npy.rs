//! Minimal NumPy `.npy` (v1.0, little-endian float32, C order) writer and reader.

use anyhow::{Result, bail};

/// Encodes `data` with `shape` as `.npy` bytes.
pub fn encode_f32(data: &[f32], shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_s = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_s}, }}");
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    for v in data {
        out.extend(v.to_le_bytes());
    }
    out
}

/// Decodes a float32 `.npy` produced by [`encode_f32`] (or NumPy): `(data, shape)`.
pub fn decode_f32(bytes: &[u8]) -> Result<(Vec<f32>, Vec<usize>)> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        bail!("not a .npy file");
    }
    let hl = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + hl])?;
    if !header.contains("'<f4'") {
        bail!("only little-endian float32 .npy is supported");
    }
    let s = header
        .split("'shape': (")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .unwrap_or("");
    let shape: Vec<usize> = s.split(',').filter_map(|d| d.trim().parse().ok()).collect();
    let data = bytes[10 + hl..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok((data, shape))
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip() {
        let b = super::encode_f32(&[1.0, -2.5, 3.0, 0.0, 5.0, 6.0], &[2, 3]);
        assert_eq!(
            b.len() % 16,
            (10 + u16::from_le_bytes([b[8], b[9]]) as usize + 24) % 16
        );
        assert_eq!((10 + u16::from_le_bytes([b[8], b[9]]) as usize) % 64, 0);
        let (d, s) = super::decode_f32(&b).unwrap();
        assert_eq!(s, vec![2, 3]);
        assert_eq!(d, vec![1.0, -2.5, 3.0, 0.0, 5.0, 6.0]);
    }
}
