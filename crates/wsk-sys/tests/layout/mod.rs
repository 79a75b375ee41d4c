//! Layout tables for the wine_layout test: ours (from `offset_of!`), Wine's (from bindgen's
//! generated layout assertions, read with `syn`), and their comparison.

use std::collections::BTreeMap;
use wsk_sys::*;

/// Size, alignment and field offsets of one struct.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    pub name: String,
    pub size: usize,
    pub align: usize,
    /// `(field, offset)` in declaration order.
    pub fields: Vec<(String, usize)>,
}

/// `layout_of!(T { f1, f2, .. })`: the [`Layout`] of `T`. The field list must be complete:
/// an exhaustive destructuring pattern makes a forgotten field a compile error.
macro_rules! layout_of {
    ($t:ident { $($f:ident),* $(,)? }) => {{
        let _exhaustive = |v: &$t| {
            let $t { $($f: _),* } = v;
        };
        $crate::layout::Layout {
            name: stringify!($t).to_string(),
            size: ::core::mem::size_of::<$t>(),
            align: ::core::mem::align_of::<$t>(),
            fields: vec![$((stringify!($f).to_string(), ::core::mem::offset_of!($t, $f))),*],
        }
    }};
}
pub(crate) use layout_of;

/// Every struct of `wsk-sys` with all its fields (the opaque `WSK_CLIENT` has none).
pub fn ours() -> Vec<Layout> {
    vec![
        layout_of!(WSK_SOCKET { Dispatch }),
        layout_of!(WSK_PROVIDER_CHARACTERISTICS {
            HighestVersion,
            LowestVersion
        }),
        layout_of!(WSK_TRANSPORT {
            Version,
            SocketType,
            Protocol,
            AddressFamily,
            ProviderId
        }),
        layout_of!(WSK_BUF {
            Mdl,
            Offset,
            Length
        }),
        layout_of!(WSK_BUF_LIST { Next, Buffer }),
        layout_of!(WSK_DATA_INDICATION { Next, Buffer }),
        layout_of!(WSK_DATAGRAM_INDICATION {
            Next,
            Buffer,
            ControlInfo,
            ControlInfoLength,
            RemoteAddress
        }),
        layout_of!(WSK_INSPECT_ID { Key, SerialNumber }),
        layout_of!(WSK_EVENT_CALLBACK_CONTROL { NpiId, EventMask }),
        layout_of!(WSK_EXTENSION_CONTROL_IN {
            NpiId,
            ClientContext,
            ClientDispatch
        }),
        layout_of!(WSK_EXTENSION_CONTROL_OUT {
            ProviderContext,
            ProviderDispatch
        }),
        layout_of!(WSK_TDI_MAP {
            SocketType,
            AddressFamily,
            Protocol,
            TdiDeviceName
        }),
        layout_of!(WSK_TDI_MAP_INFO { ElementCount, Map }),
        layout_of!(WSK_CLIENT_DISPATCH {
            Version,
            Reserved,
            WskClientEvent
        }),
        layout_of!(WSK_CLIENT_LISTEN_DISPATCH {
            WskAcceptEvent,
            WskInspectEvent,
            WskAbortEvent
        }),
        layout_of!(WSK_CLIENT_DATAGRAM_DISPATCH {
            WskReceiveFromEvent
        }),
        layout_of!(WSK_CLIENT_CONNECTION_DISPATCH {
            WskReceiveEvent,
            WskDisconnectEvent,
            WskSendBacklogEvent
        }),
        layout_of!(WSK_CLIENT_STREAM_DISPATCH { Listen, Connect }),
        layout_of!(WSK_PROVIDER_DISPATCH {
            Version,
            Reserved,
            WskSocket,
            WskSocketConnect,
            WskControlClient,
            WskGetAddressInfo,
            WskFreeAddressInfo,
            WskGetNameInfo
        }),
        layout_of!(WSK_PROVIDER_BASIC_DISPATCH {
            WskControlSocket,
            WskCloseSocket
        }),
        layout_of!(WSK_PROVIDER_LISTEN_DISPATCH {
            Basic,
            WskBind,
            WskAccept,
            WskInspectComplete,
            WskGetLocalAddress
        }),
        layout_of!(WSK_PROVIDER_DATAGRAM_DISPATCH {
            Basic,
            WskBind,
            WskSendTo,
            WskReceiveFrom,
            WskRelease,
            WskGetLocalAddress,
            WskSendMessages
        }),
        layout_of!(WSK_PROVIDER_CONNECTION_DISPATCH {
            Basic,
            WskBind,
            WskConnect,
            WskGetLocalAddress,
            WskGetRemoteAddress,
            WskSend,
            WskReceive,
            WskDisconnect,
            WskRelease,
            WskConnectEx,
            WskSendEx,
            WskReceiveEx
        }),
        layout_of!(WSK_PROVIDER_STREAM_DISPATCH {
            Basic,
            WskBind,
            WskAccept,
            WskConnect,
            WskListen,
            WskSend,
            WskReceive,
            WskDisconnect,
            WskRelease,
            WskGetLocalAddress,
            WskGetRemoteAddress,
            WskConnectEx,
            WskSendEx,
            WskReceiveEx
        }),
        layout_of!(WSK_CLIENT_NPI {
            ClientContext,
            Dispatch
        }),
        layout_of!(WSK_PROVIDER_NPI { Client, Dispatch }),
        layout_of!(WSK_REGISTRATION {
            ReservedRegistrationState,
            ReservedRegistrationContext,
            ReservedRegistrationLock
        }),
    ]
}

enum Assertion {
    Size(String, usize),
    Align(String, usize),
    Offset(String, String, usize),
}

/// Read one bindgen layout assertion: `["<label>"][<expr> - <N>usize];`.
fn parse_assertion(expr: &syn::Expr) -> Option<Assertion> {
    let syn::Expr::Index(idx) = expr else {
        return None;
    };
    let syn::Expr::Array(arr) = &*idx.expr else {
        return None;
    };
    let Some(syn::Expr::Lit(syn::ExprLit {
        lit: syn::Lit::Str(label),
        ..
    })) = arr.elems.first()
    else {
        return None;
    };
    let syn::Expr::Binary(bin) = &*idx.index else {
        return None;
    };
    if !matches!(bin.op, syn::BinOp::Sub(_)) {
        return None;
    }
    let syn::Expr::Lit(syn::ExprLit {
        lit: syn::Lit::Int(n),
        ..
    }) = &*bin.right
    else {
        return None;
    };
    let n: usize = n.base10_parse().ok()?;
    let label = label.value();
    if let Some(t) = label.strip_prefix("Size of ") {
        Some(Assertion::Size(t.trim().to_string(), n))
    } else if let Some(t) = label.strip_prefix("Alignment of ") {
        Some(Assertion::Align(t.trim().to_string(), n))
    } else if let Some(tf) = label.strip_prefix("Offset of field: ") {
        let (t, f) = tf.split_once("::")?;
        Some(Assertion::Offset(
            t.trim().to_string(),
            f.trim().to_string(),
            n,
        ))
    } else {
        None
    }
}

/// Parse bindgen's generated Rust and collect the layout of every struct whose name
/// contains `WSK`, keyed by its typedef name (`_WSK_BUF` is reported as `WSK_BUF`).
pub fn parse_bindgen_layouts(generated: &str) -> BTreeMap<String, Layout> {
    let file = syn::parse_file(generated).expect("bindgen output parses as Rust");
    // typedef name -> struct tag, from `pub type WSK_BUF = _WSK_BUF;`
    let mut tag_to_typedef: BTreeMap<String, String> = BTreeMap::new();
    let mut by_tag: BTreeMap<String, Layout> = BTreeMap::new();
    for item in &file.items {
        match item {
            syn::Item::Type(ty) => {
                if let syn::Type::Path(p) = &*ty.ty {
                    if let Some(target) = p.path.get_ident() {
                        tag_to_typedef
                            .entry(target.to_string())
                            .or_insert_with(|| ty.ident.to_string());
                    }
                }
            }
            syn::Item::Const(c) if c.ident == "_" => {
                let syn::Expr::Block(block) = &*c.expr else {
                    continue;
                };
                for stmt in &block.block.stmts {
                    let syn::Stmt::Expr(e, _) = stmt else {
                        continue;
                    };
                    match parse_assertion(e) {
                        Some(Assertion::Size(t, n)) => {
                            by_tag
                                .entry(t.clone())
                                .or_insert_with(|| new_layout(&t))
                                .size = n
                        }
                        Some(Assertion::Align(t, n)) => {
                            by_tag
                                .entry(t.clone())
                                .or_insert_with(|| new_layout(&t))
                                .align = n
                        }
                        Some(Assertion::Offset(t, f, n)) => by_tag
                            .entry(t.clone())
                            .or_insert_with(|| new_layout(&t))
                            .fields
                            .push((f, n)),
                        None => {}
                    }
                }
            }
            _ => {}
        }
    }
    by_tag
        .into_iter()
        .filter(|(tag, _)| tag.contains("WSK"))
        .map(|(tag, mut l)| {
            let name = tag_to_typedef
                .get(&tag)
                .cloned()
                .unwrap_or_else(|| tag.trim_start_matches('_').to_string());
            l.name = name.clone();
            (name, l)
        })
        .collect()
}

fn new_layout(t: &str) -> Layout {
    Layout {
        name: t.to_string(),
        size: usize::MAX,
        align: usize::MAX,
        fields: Vec::new(),
    }
}

/// Result of [`compare`].
#[derive(Debug, Default)]
pub struct Report {
    /// Structs present on both sides.
    pub structs: usize,
    /// Fields of those structs compared (Wine's fields).
    pub fields: usize,
    /// Human-readable differences; empty means the layouts agree.
    pub mismatches: Vec<String>,
    /// Our structs that Wine's header does not define.
    pub not_in_wine: Vec<String>,
}

/// Compare Wine's layouts with ours. Every Wine struct must exist in `ours` with the same
/// size, alignment and field offsets, and the same set of fields.
pub fn compare(wine: &BTreeMap<String, Layout>, ours: &[Layout]) -> Report {
    let mut r = Report::default();
    for (name, w) in wine {
        let Some(o) = ours.iter().find(|o| &o.name == name) else {
            r.mismatches.push(format!(
                "{name}: defined in Wine's header but missing in wsk-sys"
            ));
            continue;
        };
        r.structs += 1;
        if w.size != o.size {
            r.mismatches
                .push(format!("{name}: size wine {}, ours {}", w.size, o.size));
        }
        if w.align != o.align {
            r.mismatches.push(format!(
                "{name}: alignment wine {}, ours {}",
                w.align, o.align
            ));
        }
        for (f, wo) in &w.fields {
            r.fields += 1;
            match o.fields.iter().find(|(of, _)| of == f) {
                None => r.mismatches.push(format!(
                    "{name}::{f}: missing in wsk-sys (wine offset {wo})"
                )),
                Some((_, oo)) if oo != wo => r
                    .mismatches
                    .push(format!("{name}::{f}: offset wine {wo}, ours {oo}")),
                Some(_) => {}
            }
        }
        for (f, oo) in &o.fields {
            if !w.fields.iter().any(|(wf, _)| wf == f) {
                r.mismatches.push(format!(
                    "{name}::{f}: not in Wine's definition (ours offset {oo})"
                ));
            }
        }
    }
    r.not_in_wine = ours
        .iter()
        .filter(|o| !wine.contains_key(&o.name))
        .map(|o| o.name.clone())
        .collect();
    r
}
