//! The dashboard's Share button and dialog, for admins: a form that makes a share link for
//! what the admin is looking at (view, panel of an embed, segment, range, expiry, name),
//! the new link's address shown once with a Copy button, and the links made so far, each
//! with a Revoke button.
//!
//! Contract: only laid out on an admin's dashboard (never for viewers, links, public
//! visitors; never on the kiosk or an embed). The form and the list's texts come from
//! [`crate::share`], the requests from [`crate::feeds::links`]; the list is loaded when the
//! dialog opens and again after each new link or revocation. Hooks: `share-open` (the
//! button), `share` (the dialog), `share-name`, `share-view`, `share-panel`,
//! `share-filter`, `share-filter-clear`, `share-range`, `share-expiry`, `share-create`,
//! `share-error`, `share-url`, `share-copy`, `share-link-row` (`data-key`, `data-state`),
//! `share-revoke`, `share-close`.

use leptos::{html, prelude::*};
use wasm_bindgen::{JsCast, JsValue};

use crate::{
    feeds::links::{create_link, list_links, revoke_link},
    route::{Panel, Range},
    share::{share_url, CreatedLink, Expiry, LinkState, LinkView, ShareForm, SharedLink},
    state::{use_app_state, AppState},
    zone,
};

/// "Share" in the dashboard's header, and the dialog it opens.
#[component]
pub fn ShareButton() -> impl IntoView {
    let open = RwSignal::new(false);
    view! {
        <button
            type="button"
            class="share-open"
            data-testid="share-open"
            aria-haspopup="dialog"
            title="Make a link to this view for a wall display, a partner or an intranet page"
            on:click=move |_| open.set(true)
        >
            "Share"
        </button>
        <Show when=move || open.get()>
            <ShareDialog on_close=Callback::new(move |_| open.set(false))/>
        </Show>
    }
}

/// The links made so far, reloaded into `links` (or why not, into `error`).
fn reload(
    app: AppState,
    links: RwSignal<Option<Vec<SharedLink>>>,
    error: RwSignal<Option<String>>,
) {
    leptos::task::spawn_local(async move {
        match list_links(app).await {
            Ok(l) => {
                links.set(Some(l));
                error.set(None);
            }
            Err(e) => error.set(Some(e)),
        }
    });
}

/// The dialog: the form, the new link, the list.
#[component]
fn ShareDialog(
    /// Closes the dialog.
    on_close: Callback<()>,
) -> impl IntoView {
    let app = use_app_state();
    // What the admin is looking at, when the dialog opens.
    let form = RwSignal::new(ShareForm {
        site: app.site.get_untracked().unwrap_or_default(),
        ..ShareForm::for_page(
            app.filter.get_untracked().as_ref(),
            app.range.get_untracked(),
        )
    });
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let created = RwSignal::new(None::<CreatedLink>);
    let links = RwSignal::new(None::<Vec<SharedLink>>);
    let list_error = RwSignal::new(None::<String>);
    reload(app, links, list_error);

    let name_ref = NodeRef::<html::Input>::new();
    Effect::new(move |_| {
        if let Some(el) = name_ref.get() {
            let _ = el.focus();
        }
    });

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let body = match form.with_untracked(ShareForm::body) {
            Ok(b) => b,
            Err(e) => {
                error.set(Some(e));
                return;
            }
        };
        busy.set(true);
        error.set(None);
        leptos::task::spawn_local(async move {
            match create_link(app, &body).await {
                Ok(c) => {
                    created.set(Some(c));
                    form.update(|f| f.name.clear());
                    reload(app, links, list_error);
                }
                Err(e) => error.set(Some(e)),
            }
            busy.set(false);
        });
    };
    let on_key = move |ev: leptos::ev::KeyboardEvent| {
        if ev.key() == "Escape" {
            on_close.run(());
        }
    };
    let view_is = move |v: LinkView| form.with(|f| f.view == v);

    view! {
        <div class="share-backdrop" on:click=move |ev| {
            // A click on the backdrop itself (not inside the dialog) closes it.
            if ev.target() == ev.current_target() {
                on_close.run(());
            }
        }>
            <section class="share" data-testid="share" role="dialog" aria-modal="true" aria-labelledby="share-title" on:keydown=on_key>
                <header class="share-head">
                    <h2 id="share-title">"Share this view"</h2>
                    <button type="button" class="share-close" data-testid="share-close" title="Close" aria-label="Close" on:click=move |_| on_close.run(())>"✕"</button>
                </header>
                <p class="share-intro">
                    "A share link opens one view, pinned to its segment and range, for anyone who has it: no token, no sign-in. Revoke it here when it is no longer needed."
                </p>
                <form class="share-form" on:submit=submit>
                    <label for="share-name">"Name"</label>
                    <input
                        id="share-name"
                        type="text"
                        placeholder="where it is shown, e.g. lobby tv"
                        maxlength="100"
                        required
                        data-testid="share-name"
                        node_ref=name_ref
                        prop:value=move || form.with(|f| f.name.clone())
                        on:input=move |e| form.update(|f| f.name = event_target_value(&e))
                    />
                    <label for="share-view">"Opens"</label>
                    <div class="share-row">
                        <select
                            id="share-view"
                            data-testid="share-view"
                            on:change=move |e| {
                                if let Some(v) = LinkView::from_name(&event_target_value(&e)) {
                                    form.update(|f| f.view = v);
                                }
                            }
                        >
                            {LinkView::ALL
                                .into_iter()
                                .map(|v| {
                                    let selected = form.with_untracked(|f| f.view == v);
                                    view! { <option value=v.as_str() selected=selected>{v.label()}</option> }
                                })
                                .collect_view()}
                        </select>
                        <Show when=move || view_is(LinkView::Embed)>
                            <select
                                aria-label="Panel"
                                data-testid="share-panel"
                                on:change=move |e| {
                                    if let Some(p) = Panel::from_name(&event_target_value(&e)) {
                                        form.update(|f| f.panel = p);
                                    }
                                }
                            >
                                {Panel::ALL
                                    .into_iter()
                                    .map(|p| {
                                        let selected = form.with_untracked(|f| f.panel == p);
                                        view! { <option value=p.name() selected=selected>{p.name()}</option> }
                                    })
                                    .collect_view()}
                            </select>
                        </Show>
                    </div>
                    <label for="share-site">"Site"</label>
                    <div class="share-row">
                        <input
                            id="share-site"
                            type="text"
                            placeholder="every site (or shop.example…)"
                            data-testid="share-site"
                            prop:value=move || form.with(|f| f.site.clone())
                            on:input=move |e| form.update(|f| f.site = event_target_value(&e))
                        />
                    </div>
                    <label for="share-filter">"Segment"</label>
                    <div class="share-row">
                        <input
                            id="share-filter"
                            type="text"
                            placeholder="all traffic (or country:DE, device:mobile…)"
                            data-testid="share-filter"
                            prop:value=move || form.with(|f| f.filter.clone())
                            on:input=move |e| form.update(|f| f.filter = event_target_value(&e))
                        />
                        <Show when=move || form.with(|f| !f.filter.is_empty())>
                            <button type="button" class="share-clear" data-testid="share-filter-clear" title="All traffic" on:click=move |_| form.update(|f| f.filter.clear())>"✕"</button>
                        </Show>
                    </div>
                    <div class="share-pair">
                        <div>
                            <label for="share-range">"Range"</label>
                            <select
                                id="share-range"
                                data-testid="share-range"
                                on:change=move |e| {
                                    if let Some(r) = Range::from_label(&event_target_value(&e)) {
                                        form.update(|f| f.range = r);
                                    }
                                }
                            >
                                {Range::ALL
                                    .into_iter()
                                    .map(|r| {
                                        let selected = form.with_untracked(|f| f.range == r);
                                        view! { <option value=r.label() selected=selected>{format!("last {}", r.label())}</option> }
                                    })
                                    .collect_view()}
                            </select>
                        </div>
                        <div>
                            <label for="share-expiry">"Expires"</label>
                            <select
                                id="share-expiry"
                                data-testid="share-expiry"
                                on:change=move |e| {
                                    if let Some(x) = Expiry::from_value(&event_target_value(&e)) {
                                        form.update(|f| f.expiry = x);
                                    }
                                }
                            >
                                {Expiry::ALL
                                    .into_iter()
                                    .map(|x| {
                                        let selected = form.with_untracked(|f| f.expiry == x);
                                        view! { <option value=x.value() selected=selected>{x.label()}</option> }
                                    })
                                    .collect_view()}
                            </select>
                        </div>
                    </div>
                    <div class="share-actions">
                        <button type="submit" class="share-create" data-testid="share-create" disabled=move || busy.get()>
                            {move || if busy.get() { "Creating…" } else { "Create link" }}
                        </button>
                        {move || error.get().map(|e| view! { <p class="share-error" data-testid="share-error" role="alert">{e}</p> })}
                    </div>
                </form>
                {move || created.get().map(|c| view! { <Created link=c/> })}
                <h3 class="share-sub">"Links"</h3>
                {move || list_error.get().map(|e| view! { <p class="share-error" role="alert">{e}</p> })}
                <LinkList links=links on_revoke=Callback::new(move |key: String| {
                    leptos::task::spawn_local(async move {
                        match revoke_link(app, &key).await {
                            // The address just shown no longer opens anything: take it away.
                            Ok(()) if created.with_untracked(|c| c.as_ref().is_some_and(|c| c.key == key)) => {
                                created.set(None)
                            }
                            Ok(()) => {}
                            Err(e) => list_error.set(Some(e)),
                        }
                        reload(app, links, list_error);
                    });
                })/>
            </section>
        </div>
    }
}

/// The link just made: its full address, once, with a Copy button.
#[component]
fn Created(
    /// The server's answer.
    link: CreatedLink,
) -> impl IntoView {
    let origin = window().location().origin().unwrap_or_default();
    let url = share_url(&origin, &link.url);
    let input = NodeRef::<html::Input>::new();
    let copied = RwSignal::new(None::<&'static str>);
    let to_copy = url.clone();
    let copy = move |_| {
        let text = to_copy.clone();
        leptos::task::spawn_local(async move {
            let said = if write_clipboard(&text).await {
                "Copied."
            } else {
                // No clipboard (an insecure origin, or refused): select it for the keyboard.
                if let Some(el) = input.get_untracked() {
                    el.select();
                }
                "Selected: press Ctrl+C (⌘C) to copy."
            };
            copied.set(Some(said));
        });
    };
    view! {
        <div class="share-created" data-testid="share-created" role="status">
            <label for="share-url">{format!("Link \u{201c}{}\u{201d}", link.name)}</label>
            <div class="share-row">
                <input
                    id="share-url"
                    type="text"
                    readonly
                    data-testid="share-url"
                    node_ref=input
                    prop:value=url
                    on:focus=move |_| {
                        if let Some(el) = input.get_untracked() {
                            el.select();
                        }
                    }
                />
                <button type="button" class="share-copy" data-testid="share-copy" on:click=copy>"Copy"</button>
            </div>
            <p class="share-once">
                {move || copied.get().map(|c| format!("{c} ")).unwrap_or_default()}
                "This address is shown once: Pulseboard keeps only a hash of it. If it is lost, revoke the link and make another."
            </p>
        </div>
    }
}

/// Writes `text` to the clipboard (`navigator.clipboard.writeText`); `false` when the
/// browser has no clipboard API here or refused.
async fn write_clipboard(text: &str) -> bool {
    let get = |o: &JsValue, k: &str| js_sys::Reflect::get(o, &JsValue::from_str(k)).ok();
    let clipboard = get(&window().into(), "navigator")
        .and_then(|n| get(&n, "clipboard"))
        .filter(|c| !c.is_undefined() && !c.is_null());
    let Some(clipboard) = clipboard else {
        return false;
    };
    let Some(write) =
        get(&clipboard, "writeText").and_then(|f| f.dyn_into::<js_sys::Function>().ok())
    else {
        return false;
    };
    let Ok(promise) = write.call1(&clipboard, &JsValue::from_str(text)) else {
        return false;
    };
    match promise.dyn_into::<js_sys::Promise>() {
        Ok(p) => wasm_bindgen_futures::JsFuture::from(p).await.is_ok(),
        Err(_) => false,
    }
}

/// The links made so far, newest first: name, what it opens, when it ends, Revoke.
#[component]
fn LinkList(
    /// The list (`None` while loading).
    links: RwSignal<Option<Vec<SharedLink>>>,
    /// Revokes the link of this key.
    on_revoke: Callback<String>,
) -> impl IntoView {
    let app = use_app_state();
    move || match links.get() {
        None => view! { <p class="share-empty">"Loading…"</p> }.into_any(),
        Some(l) if l.is_empty() => {
            view! { <p class="share-empty">"No share links yet."</p> }.into_any()
        }
        Some(l) => {
            let now = app.clock.get_untracked() as i64;
            let offset = zone::offset_ms();
            view! {
                <ul class="share-list">
                    {l.into_iter()
                        .map(|link| {
                            let state = link.state(now);
                            let key = link.key.clone();
                            let (state_name, ended) = match state {
                                LinkState::Active => ("active", false),
                                LinkState::Expired => ("expired", true),
                                LinkState::Revoked => ("revoked", true),
                            };
                            view! {
                                <li class="share-link" class:ended=ended data-testid="share-link-row" data-key=link.key.clone() data-state=state_name>
                                    <div class="share-link-text">
                                        <span class="share-link-name">{link.name.clone()}</span>
                                        <span class="share-link-opens">{link.opens()}</span>
                                    </div>
                                    <span class="share-link-expiry">{link.expiry_text(now, offset)}</span>
                                    {(state != LinkState::Revoked).then(|| view! {
                                        <button type="button" class="share-revoke" data-testid="share-revoke" title="Stop this link working: its open screens end within seconds" on:click=move |_| on_revoke.run(key.clone())>"Revoke"</button>
                                    })}
                                </li>
                            }
                        })
                        .collect_view()}
                </ul>
            }
            .into_any()
        }
    }
}
