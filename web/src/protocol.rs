//! Messages between the page (DOM only) and the compute worker (models, maps, live fooling).
//!
//! A message is a JS object `{json: <one Request or Event as JSON>, bytes?: Uint8Array}`; image
//! bytes travel beside the JSON. Floats that may be non-finite (statistics of a constant map,
//! map values) go as `null` and come back as NaN, because JSON has no NaN.

use foolmap::fooling::FoolingType;
use foolmap::{Architecture, Interpreter};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use wasm_bindgen::{JsCast, JsValue};

use crate::Backend;
use crate::state::Output;
use crate::wire::nan;

/// What a computation is for: the generation the page is waiting for, the two models (manifest
/// ids) and the interpreter (its id on the wire).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Compute {
    pub generation: u64,
    pub original: String,
    pub fooled: String,
    pub interpreter: Interpreter,
}

/// Page → worker.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    /// The manifest text (the page fetched it), the backend asked for (`?backend=`), and the
    /// model files the page fetched while the worker compiled its wasm (their bytes beside the
    /// JSON, one after the other: [`split_preloaded`]).
    Init {
        manifest: String,
        backend: Backend,
        preloaded: Vec<Preloaded>,
    },
    /// Switch the backend; the worker drops the models and any live run on the old one.
    SwitchBackend { want: Backend },
    /// A new image (its bytes beside the JSON), then compute for it.
    Image {
        name: String,
        label: Option<usize>,
        title: String,
        compute: Compute,
    },
    /// Compute maps for the current image.
    Compute { compute: Compute },
    /// Start or continue live fooling; the maps for `compute` are redrawn every few steps.
    LiveStart {
        kind: FoolingType,
        lambda: f64,
        lr: f64,
        compute: Compute,
    },
    /// Stop live fooling after the current step.
    LiveStop,
    /// Forget the live model and compute with the exported one again.
    LiveReset { compute: Compute },
}

/// A model file sent with [`Request::Init`]: its manifest id and its length in the message's
/// bytes.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Preloaded {
    pub id: String,
    pub len: usize,
}

/// The files of [`Request::Init`]'s bytes, by manifest id; the lengths must add up to the bytes.
pub fn split_preloaded<'a>(
    list: &'a [Preloaded],
    bytes: &'a [u8],
) -> Result<Vec<(&'a str, &'a [u8])>, String> {
    let total = list.iter().try_fold(0usize, |a, p| a.checked_add(p.len));
    if total != Some(bytes.len()) {
        return Err(format!(
            "the page sent {} bytes of model files but listed {}",
            bytes.len(),
            total.map_or("more than fit in memory".into(), |t| t.to_string())
        ));
    }
    let mut rest = bytes;
    Ok(list
        .iter()
        .map(|p| {
            let (file, tail) = rest.split_at(p.len);
            rest = tail;
            (p.id.as_str(), file)
        })
        .collect())
}

/// One architecture of the library's registry (the page's registry table).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct RegistryRow {
    pub id: Architecture,
    pub dataset: String,
    /// Name of the layer whose input is the tap.
    pub tap: String,
    pub parameters: usize,
}

/// Worker → page.
#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(tag = "ev", rename_all = "snake_case")]
pub enum Event {
    /// The worker's wasm is running and listens (messages sent before are lost); with the
    /// architecture registry.
    Alive { registry: Vec<RegistryRow> },
    /// `Init` or `SwitchBackend` done: the backend in use and why it differs from the wish.
    Backend { backend: Backend, note: String },
    /// A progress line for `#status`.
    Status { text: String },
    /// The result of a computation.
    Output {
        generation: u64,
        output: Box<Output>,
    },
    /// A computation (or an image decode) failed.
    Error { generation: u64, error: String },
    /// One live fooling step done.
    LiveStep {
        step: u64,
        #[serde(with = "nan")]
        ce: f64,
        #[serde(with = "nan")]
        fool: f64,
    },
    /// Live fooling started or ended (with the reason when it failed).
    LiveState {
        running: bool,
        error: Option<String>,
    },
    /// The worker cannot go on (a panic, a failed start).
    Fatal { error: String },
}

/// JSON text of a message.
pub fn to_json(msg: &impl Serialize) -> Result<String, String> {
    serde_json::to_string(msg).map_err(|e| format!("cannot encode a message: {e}"))
}

/// A message from JSON text; the error names what was expected.
pub fn from_json<T: DeserializeOwned>(text: &str, what: &str) -> Result<T, String> {
    serde_json::from_str(text).map_err(|e| format!("malformed {what} message: {e}"))
}

/// Wraps a message (and optional bytes) as the JS object posted between page and worker.
pub fn encode(msg: &impl Serialize, bytes: Option<&[u8]>) -> Result<JsValue, String> {
    let obj = js_sys::Object::new();
    let set = |k: &str, v: &JsValue| {
        js_sys::Reflect::set(&obj, &k.into(), v)
            .map(|_| ())
            .map_err(|e| format!("cannot build a message: {e:?}"))
    };
    set("json", &to_json(msg)?.into())?;
    if let Some(b) = bytes {
        set("bytes", &js_sys::Uint8Array::from(b).into())?;
    }
    Ok(obj.into())
}

/// Unwraps a posted JS object into the message and its bytes.
pub fn decode<T: DeserializeOwned>(
    v: &JsValue,
    what: &str,
) -> Result<(T, Option<Vec<u8>>), String> {
    let json = js_sys::Reflect::get(v, &"json".into())
        .ok()
        .and_then(|j| j.as_string())
        .ok_or_else(|| format!("a {what} message without a `json` string"))?;
    let msg = from_json(&json, what)?;
    let bytes = js_sys::Reflect::get(v, &"bytes".into())
        .ok()
        .and_then(|b| b.dyn_into::<js_sys::Uint8Array>().ok())
        .map(|a| a.to_vec());
    Ok((msg, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{MapPair, Stats};
    use foolmap::Interpreter;
    use foolmap::image::Rgb8;

    fn output() -> Output {
        Output {
            backend: Backend::Cpu,
            model: "m".into(),
            interpreter: Interpreter::GradCam,
            image_title: "cat 1".into(),
            crop: Rgb8 {
                width: 2,
                height: 1,
                data: vec![1, 2, 3, 4, 5, 6],
            },
            class: 3,
            class_source: "label".into(),
            logits: (vec![0.5, -1.0], vec![0.25, 2.0]),
            maps: vec![MapPair {
                interpreter: Interpreter::LrpT,
                original: (vec![0.0, 1.0, f32::NAN, 0.5], 2, 2),
                fooled: (vec![1.0; 4], 2, 2),
            }],
            stats: Some(Stats {
                location: (0.4, 0.1),
                topk: 0.2,
                topk_overlap: 0.5,
                center_shift: 0.3,
                spearman: f64::NAN,
                frame_mass: (0.1, 0.9),
                constant: (false, true),
            }),
            partial: false,
            ms: 12.5,
            forward_ms: 2.0,
            timings: vec![("lrp_t".into(), 3.0)],
        }
    }

    #[test]
    fn an_output_survives_the_wire_with_its_nans() {
        let ev = Event::Output {
            generation: 7,
            output: Box::new(output()),
        };
        let text = to_json(&ev).expect("encode");
        let back: Event = from_json(&text, "worker").expect("decode");
        let Event::Output { generation, output } = back else {
            panic!("not an output: {text}")
        };
        assert_eq!(generation, 7);
        let want = self::output();
        assert_eq!(output.interpreter, want.interpreter);
        assert_eq!(output.crop.data, want.crop.data);
        assert_eq!(output.maps[0].interpreter, Interpreter::LrpT);
        let (v, h, w) = &output.maps[0].original;
        assert_eq!((*h, *w), (2, 2));
        assert!(v[2].is_nan() && v[1] == 1.0);
        let s = output.stats.expect("stats");
        assert!(s.spearman.is_nan());
        assert_eq!(s.location, (0.4, 0.1));
        assert_eq!(output.logits, want.logits);
    }

    #[test]
    fn requests_round_trip() {
        let c = Compute {
            generation: 3,
            original: "original".into(),
            fooled: "f".into(),
            interpreter: Interpreter::GradCam,
        };
        for r in [
            Request::Init {
                manifest: "{}".into(),
                backend: Backend::WebGpu,
                preloaded: vec![Preloaded {
                    id: "resnet20-original".into(),
                    len: 3,
                }],
            },
            Request::Compute { compute: c.clone() },
            Request::LiveStart {
                kind: FoolingType::Location,
                lambda: 10.0,
                lr: 1e-3,
                compute: c.clone(),
            },
            Request::LiveStop,
        ] {
            let back: Request = from_json(&to_json(&r).expect("encode"), "page").expect("decode");
            assert_eq!(back, r);
        }
        assert!(
            to_json(&Request::LiveStop)
                .expect("e")
                .contains("\"cmd\":\"live_stop\"")
        );
        // Registry values travel as their ids, and an unknown id is refused by name.
        let text = to_json(&Request::Compute { compute: c }).expect("encode");
        assert!(text.contains("\"interpreter\":\"grad_cam\""), "{text}");
        let e = from_json::<Request>(&text.replace("grad_cam", "gradcam++"), "page").unwrap_err();
        assert!(e.contains("gradcam++"), "{e}");
    }

    #[test]
    fn preloaded_files_are_split_by_their_lengths() {
        let list = [
            Preloaded {
                id: "a".into(),
                len: 2,
            },
            Preloaded {
                id: "b".into(),
                len: 3,
            },
        ];
        let files = split_preloaded(&list, b"xxyyy").expect("split");
        assert_eq!(files, vec![("a", &b"xx"[..]), ("b", &b"yyy"[..])]);
        assert_eq!(split_preloaded(&[], &[]).expect("none"), vec![]);
        for bytes in [&b"xxyy"[..], &b"xxyyyz"[..]] {
            let e = split_preloaded(&list, bytes).unwrap_err();
            assert!(
                e.contains(&format!("{} bytes", bytes.len())) && e.contains("listed 5"),
                "{e}"
            );
        }
        let huge = [
            Preloaded {
                id: "a".into(),
                len: usize::MAX,
            },
            Preloaded {
                id: "b".into(),
                len: 1,
            },
        ];
        let e = split_preloaded(&huge, b"x").unwrap_err();
        assert!(e.contains("more than fit"), "{e}");
    }

    #[test]
    fn malformed_messages_name_what_was_expected() {
        let e = from_json::<Request>(r#"{"cmd":"compute"}"#, "page").unwrap_err();
        assert!(
            e.contains("malformed page message") && e.contains("compute"),
            "{e}"
        );
        let e = from_json::<Event>(
            r#"{"ev":"output","generation":1,"output":{"backend":"cpu","model":"m","interpreter":"grad_cam","image_title":"t","crop":{"width":2,"height":2,"data":[1]},"class":0,"class_source":"label","logits":[[],[]],"maps":[],"stats":null,"partial":false,"ms":0,"forward_ms":0,"timings":[]}}"#,
            "worker",
        )
        .unwrap_err();
        assert!(e.contains("2×2 RGB image with 1 bytes"), "{e}");
    }
}
