//! Serde encodings of the page ↔ worker messages for values JSON cannot carry as they are:
//! floats that may be non-finite (`null` on the wire, NaN again on arrival), maps and images.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `f64` that may be NaN: `null` on the wire.
pub mod nan {
    use super::*;
    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f64(*v)
        } else {
            s.serialize_none()
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}

/// A pair of `f64` that may be NaN.
pub mod nan2 {
    use super::*;
    pub fn serialize<S: Serializer>(v: &(f64, f64), s: S) -> Result<S::Ok, S::Error> {
        let f = |x: f64| x.is_finite().then_some(x);
        (f(v.0), f(v.1)).serialize(s)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<(f64, f64), D::Error> {
        let (a, b) = <(Option<f64>, Option<f64>)>::deserialize(d)?;
        Ok((a.unwrap_or(f64::NAN), b.unwrap_or(f64::NAN)))
    }
}

/// `Vec<f32>` whose values may be NaN.
pub mod nanvec {
    use super::*;
    pub fn serialize<S: Serializer>(v: &[f32], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|x| x.is_finite().then_some(*x)))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f32>, D::Error> {
        Ok(Vec::<Option<f32>>::deserialize(d)?
            .into_iter()
            .map(|x| x.unwrap_or(f32::NAN))
            .collect())
    }
}

/// A map `(values, h, w)` whose values may be NaN.
pub mod nanmap {
    use super::*;
    pub fn serialize<S: Serializer>(v: &(Vec<f32>, usize, usize), s: S) -> Result<S::Ok, S::Error> {
        let values: Vec<Option<f32>> = v.0.iter().map(|x| x.is_finite().then_some(*x)).collect();
        (values, v.1, v.2).serialize(s)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<(Vec<f32>, usize, usize), D::Error> {
        let (values, h, w) = <(Vec<Option<f32>>, usize, usize)>::deserialize(d)?;
        if values.len() != h * w {
            return Err(serde::de::Error::custom(format!(
                "a {h}×{w} map with {} values",
                values.len()
            )));
        }
        Ok((
            values.into_iter().map(|x| x.unwrap_or(f32::NAN)).collect(),
            h,
            w,
        ))
    }
}

/// `foolmap::image::Rgb8` as `{width, height, data}` with a size check.
pub mod rgb8 {
    use super::*;
    use foolmap::image::Rgb8;
    #[derive(Serialize, Deserialize)]
    struct Wire {
        width: usize,
        height: usize,
        data: Vec<u8>,
    }
    pub fn serialize<S: Serializer>(v: &Rgb8, s: S) -> Result<S::Ok, S::Error> {
        Wire {
            width: v.width,
            height: v.height,
            data: v.data.clone(),
        }
        .serialize(s)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Rgb8, D::Error> {
        let w = Wire::deserialize(d)?;
        if w.data.len() != w.width * w.height * 3 {
            return Err(serde::de::Error::custom(format!(
                "a {}×{} RGB image with {} bytes",
                w.width,
                w.height,
                w.data.len()
            )));
        }
        Ok(Rgb8 {
            width: w.width,
            height: w.height,
            data: w.data,
        })
    }
}
