//! Host stand-in for `wdk-macros` 0.5.2's `call_unsafe_wdf_function_binding!`, used only
//! through `wdk-sys-standin`'s macro of the same name (never by a Windows build).
//!
//! `call_unsafe_wdf_function_binding!(<crate>, WdfName, args...)` expands as wdk-macros does
//! (wdk-macros 0.5.2, `src/lib.rs`, `generate_intermediate_output_ast_fragments`): the entry
//! `WdfFunctions[_WDFFUNCENUM::WdfNameTableIndex]` of the function table (a slice of
//! `get_wdf_function_count()` entries) is transmuted to `PFN_WDFNAME` and called with
//! `WdfDriverGlobals` first, then the arguments. The names are derived as wdk-macros derives
//! them: `PFN_` + the upper-cased name, and the name + `TableIndex`.
//!
//! One difference: wdk-macros reads each function's parameter list from bindgen's generated
//! `types.rs` and wraps the call in an inline `unsafe fn` with those parameters (and
//! `#[must_use]` when it returns a value); here the arguments are passed straight to the
//! typed function pointer. Both are coercion sites with the same parameter types, so the
//! same arguments type-check (and the same wrong ones fail with E0308); an unused result is
//! not reported here as it may be by the real macro.

use proc_macro::{Delimiter, Group, Ident, Span, TokenStream, TokenTree};

/// The expansion, with `KRATE__` (the stand-in crate path), `PFN__`, `INDEX__` and `ARGS__`
/// spliced in. Like wdk-macros, the caller must be in an `unsafe` context: the final call is
/// through an `unsafe extern "C" fn` pointer and reads the extern static `WdfDriverGlobals`.
const TEMPLATE: &str = r#"{
    let wdf_function: KRATE__::PFN__ = ::core::option::Option::Some(
        // SAFETY: the table entry at this index is the function of this type (the WDF
        // function table's contract, established by the binding at load).
        unsafe {
            let wdf_function_table = KRATE__::WdfFunctions;
            let wdf_function_count = KRATE__::wdf::__private::get_wdf_function_count();
            debug_assert!(isize::try_from(
                wdf_function_count * ::core::mem::size_of::<KRATE__::WDFFUNC>()
            ).is_ok());
            let wdf_function_table =
                ::core::slice::from_raw_parts(wdf_function_table, wdf_function_count);
            ::core::mem::transmute(
                wdf_function_table[KRATE__::_WDFFUNCENUM::INDEX__ as usize],
            )
        },
    );
    if let ::core::option::Option::Some(wdf_function) = wdf_function {
        (wdf_function)(KRATE__::WdfDriverGlobals, ARGS__)
    } else {
        unreachable!("Option should never be None");
    }
}"#;

/// `call_unsafe_wdf_function_binding!(<crate path>, WdfName [, args...])`.
#[proc_macro]
pub fn call_unsafe_wdf_function_binding(input: TokenStream) -> TokenStream {
    let mut tokens = input.into_iter().peekable();
    let mut krate = Vec::new();
    for t in tokens.by_ref() {
        match &t {
            TokenTree::Punct(p) if p.as_char() == ',' => break,
            _ => krate.push(t),
        }
    }
    let name = match tokens.next() {
        Some(TokenTree::Ident(i)) => i,
        other => return error("expected a WDF function name", other.map(|t| t.span())),
    };
    match tokens.next() {
        None => {}
        Some(TokenTree::Punct(p)) if p.as_char() == ',' => {}
        Some(t) => return error("expected `,` after the WDF function name", Some(t.span())),
    }
    let args: Vec<TokenTree> = tokens.collect();
    let pfn = Ident::new(
        &format!("PFN_{}", name.to_string().to_uppercase()),
        name.span(),
    );
    let index = Ident::new(&format!("{name}TableIndex"), name.span());
    let template: TokenStream = match TEMPLATE.parse() {
        Ok(t) => t,
        Err(_) => return error("internal: template does not parse", None),
    };
    splice(template, &krate, &pfn, &index, &args)
}

fn splice(
    ts: TokenStream,
    krate: &[TokenTree],
    pfn: &Ident,
    index: &Ident,
    args: &[TokenTree],
) -> TokenStream {
    let mut out = Vec::new();
    for t in ts {
        match t {
            TokenTree::Ident(i) if i.to_string() == "KRATE__" => out.extend(krate.iter().cloned()),
            TokenTree::Ident(i) if i.to_string() == "PFN__" => {
                out.push(TokenTree::Ident(pfn.clone()))
            }
            TokenTree::Ident(i) if i.to_string() == "INDEX__" => {
                out.push(TokenTree::Ident(index.clone()))
            }
            TokenTree::Ident(i) if i.to_string() == "ARGS__" => out.extend(args.iter().cloned()),
            TokenTree::Group(g) => {
                let mut ng = Group::new(g.delimiter(), splice(g.stream(), krate, pfn, index, args));
                ng.set_span(g.span());
                out.push(TokenTree::Group(ng));
            }
            other => out.push(other),
        }
    }
    out.into_iter().collect()
}

fn error(msg: &str, span: Option<Span>) -> TokenStream {
    let span = span.unwrap_or_else(Span::call_site);
    let ts: TokenStream = format!("compile_error!({msg:?});")
        .parse()
        .unwrap_or_default();
    ts.into_iter()
        .map(|mut t| {
            t.set_span(span);
            if let TokenTree::Group(g) = &t {
                let mut ng = Group::new(Delimiter::Parenthesis, g.stream());
                ng.set_span(span);
                t = TokenTree::Group(ng);
            }
            t
        })
        .collect()
}
