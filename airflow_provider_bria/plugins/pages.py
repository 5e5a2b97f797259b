"""Server-rendered HTML of the Bria pages (no JavaScript, no build chain): layout, gallery, overview.

Every value is HTML-escaped; links are built by the caller (``url``) from Airflow's own routes or the plugin's.
Pages show ids, names, prompts, seeds and request ids, never a URL Bria returned (those are pre-signed).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

from airflow_provider_bria.plugins.airflow_data import ModelEvent, TaskOutput
from airflow_provider_bria.plugins.bria_status import Overview
from airflow_provider_bria.plugins.outputs import Gallery, GalleryItem, pretty_json

#: Content-Security-Policy of every page: nothing but this origin, no script at all.
CSP = ("default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'; "
       "frame-ancestors 'self'; form-action 'self'; base-uri 'none'")

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1rem 1.5rem;color:#1a202c}
h1{font-size:1.4rem}h2{font-size:1.15rem;margin-top:1.6rem}h3{font-size:1rem}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(230px,1fr));gap:14px}
.card{border:1px solid #cbd5e0;border-radius:8px;padding:8px;background:#fff}
.card img,.card video{width:100%;height:auto;border-radius:4px;background:#edf2f7;display:block}
.meta{font-size:.8rem;margin:.4rem 0 0;word-break:break-word}.meta dt{font-weight:600;float:left;margin-right:.3rem}
.meta dd{margin:0 0 .15rem}.note{padding:.6rem .8rem;border-radius:6px;background:#ebf8ff;border:1px solid #90cdf4}
.error{padding:.6rem .8rem;border-radius:6px;background:#fff5f5;border:1px solid #feb2b2}
table{border-collapse:collapse;font-size:.85rem;margin:.4rem 0}th,td{border:1px solid #cbd5e0;padding:4px 8px;
text-align:left;vertical-align:top}th{background:#f7fafc}.muted{color:#718096}
pre{white-space:pre-wrap;font-size:.75rem;max-height:18rem;overflow:auto;background:#f7fafc;padding:.4rem}
.full{display:none;position:fixed;inset:0;background:rgba(0,0,0,.85);z-index:9;align-items:center;
justify-content:center}.full:target{display:flex}.full img{max-width:96vw;max-height:94vh}
"""

Url = Callable[..., str]


def esc(value: Any) -> str:
    """HTML-escape any value (``None`` shows as an empty string).

    :param value: the value.
    """
    return "" if value is None else html.escape(str(value), quote=True)


def layout(title: str, body: str) -> str:
    """A whole page.

    :param title: the page title (plain text).
    :param body: the body HTML.
    """
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{esc(title)}</title>"
            f"<meta name=referrer content=same-origin><style>{_STYLE}</style></head>"
            f"<body><h1>{esc(title)}</h1>{body}</body></html>")


def _fmt_time(value: datetime | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    return str(value)


def pages_id(name: str) -> str:
    """An HTML id derived from a file name (letters, digits, dashes).

    :param name: the file name.
    """
    return "".join(c if c.isalnum() else "-" for c in name)


def _meta(item: dict[str, Any]) -> str:
    rows = []
    for key, label in (("prompt", "prompt"), ("seed", "seed"), ("model_id", "model"), ("request_id", "request id"),
                       ("image", "input image")):
        if item.get(key) not in (None, ""):
            rows.append(f"<dt>{label}</dt><dd class=f-{key.replace('_', '-')}>{esc(item[key])}</dd>")
    structured = item.get("structured_prompt")
    if structured and not item.get("prompt"):
        rows.append(f"<dt>structured prompt</dt><dd><pre>{esc(pretty_json(structured, limit=600))}</pre></dd>")
    return f"<dl class=meta>{''.join(rows)}</dl>" if rows else "<p class='meta muted'>no sidecar metadata</p>"


def _card(item: GalleryItem, full: str, thumb: str) -> str:
    if item.kind == "video":
        media = (f"<video class=bria-video controls muted playsinline preload=metadata src='{esc(full)}'>"
                 "your browser cannot play MP4</video>")
    else:
        # Full size without JavaScript (the UI's plugin frame allows no pop-up): a :target overlay, loaded lazily
        anchor = "full-" + pages_id(item.name)
        alt = esc(item.meta.get("prompt") or item.name)
        media = (f"<a href='#{anchor}'><img class=bria-thumb loading=eager data-name='{esc(item.name)}' alt='{alt}' "
                 f"src='{esc(thumb)}'></a><a class=full id={anchor} href='#' title='close'>"
                 f"<img class=bria-full loading=lazy alt='{alt}' src='{esc(full)}'></a>")
    return (f"<div class=card data-name='{esc(item.name)}'>{media}<div class=meta><code>{esc(item.name)}</code></div>"
            f"{_meta(item.meta)}</div>")


def _why_empty(task: TaskOutput, gallery: Gallery | None, error: str | None) -> str:
    if error:
        return f"<p class=error>The output folder could not be read: {esc(error)}</p>"
    if task.output_path is None:
        if task.state in ("failed", "upstream_failed"):
            return (f"<p class=error>This task is <b>{esc(task.state)}</b> and wrote no output folder: it stopped "
                    "before generating anything (see its log for the reason).</p>")
        if task.state in (None, "scheduled", "queued", "running", "deferred", "up_for_retry", "awaiting_input"):
            return f"<p class=note>This task is {esc(task.state or 'not started')}: no output yet.</p>"
        return f"<p class=note>This task ({esc(task.state)}) wrote no output folder: it is not a generation task.</p>"
    if gallery is not None and not gallery.items:
        if task.state == "failed":
            return "<p class=error>The task failed before any file was written (see the failures and its log).</p>"
        return "<p class=note>The output folder holds no image or video.</p>"
    return ""


def _failures(task: TaskOutput) -> str:
    if not task.failures:
        return ""
    rows = "".join(
        f"<tr><td>{esc(f.get('name'))}</td><td>{esc(f.get('prompt'))}</td><td>{esc(f.get('seed'))}</td>"
        f"<td>{esc(f.get('kind'))}</td><td>{esc(f.get('reason'))}</td><td>{esc(f.get('request_id'))}</td></tr>"
        for f in task.failures[:200]
    )
    return (f"<h3>{len(task.failures)} item(s) failed</h3><table class=failures><tr><th>file</th><th>prompt</th>"
            f"<th>seed</th><th>kind</th><th>reason</th><th>request id</th></tr>{rows}</table>")


def _pending(gallery: Gallery) -> str:
    if not gallery.pending:
        return ""
    rows = "".join(f"<tr><td>{esc(p.stem)}</td><td>{esc(p.meta.get('status'))}</td><td>{esc(p.meta.get('prompt'))}"
                   f"</td><td>{esc(p.meta.get('request_id'))}</td></tr>" for p in gallery.pending[:200])
    return (f"<h3>{len(gallery.pending)} output(s) without a file</h3><table><tr><th>name</th><th>status</th>"
            f"<th>prompt</th><th>request id</th></tr>{rows}</table>")


def task_section(task: TaskOutput, gallery: Gallery | None, error: str | None, media_url: Url,
                 *, heading: bool) -> str:
    """The gallery of one task instance.

    :param task: the task instance.
    :param gallery: its folder's content (``None`` when it has no folder or it could not be read).
    :param error: why the folder could not be read.
    :param media_url: ``media_url(name, thumb=bool)`` -> URL of a file of this task.
    :param heading: add a heading naming the task.
    """
    label = task.task_id + (f" [{task.map_index}]" if task.map_index >= 0 else "")
    parts = [f"<h2>{esc(label)} <span class=muted>({esc(task.state or 'no state')})</span></h2>"] if heading else []
    if gallery is not None and gallery.items:
        count = sum(1 for i in gallery.items if i.kind == "image")
        videos = len(gallery.items) - count
        parts.append(f"<p class=muted>{count} image(s), {videos} video(s) in <code>{esc(gallery.uri)}</code>"
                     + (" (list truncated)" if gallery.truncated else "") + "</p>")
        cards = "".join(_card(i, media_url(i.name, thumb=False), media_url(i.name, thumb=True)) for i in gallery.items)
        parts.append(f"<div class=grid>{cards}</div>")
    parts.append(_why_empty(task, gallery, error))
    parts.append(_failures(task))
    if gallery is not None:
        parts.append(_pending(gallery))
    return f"<section class=task data-task='{esc(label)}'>{''.join(parts)}</section>"


def _elapsed(start: datetime | None, end: datetime | None) -> str:
    if not start or not end:
        return ""
    seconds = int((end - start).total_seconds())
    hours, rest = divmod(max(seconds, 0), 3600)
    return f"{hours}h {rest // 60:02d}m {rest % 60:02d}s" if hours else f"{rest // 60}m {rest % 60:02d}s"


def _events_cell(events: Sequence[ModelEvent], run_url: Url, can_read: Callable[[str], bool]) -> tuple[str, str]:
    """(trained-by cell, asset-events cell) of a model."""
    if not events:
        return "<span class=muted>no Airflow run</span>", "<span class=muted>none</span>"
    first = events[-1]
    if first.dag_id and first.run_id and can_read(first.dag_id):
        trained = (f"<a href='{esc(run_url(first.dag_id, first.run_id))}'>{esc(first.dag_id)} / "
                   f"{esc(first.run_id)}</a>")
    elif first.dag_id:
        trained = "<span class=muted>a DAG you cannot read</span>"
    else:
        trained = "<span class=muted>emitted through the API</span>"
    items = "".join(f"<li>{esc(_fmt_time(e.timestamp))} <code>{esc(e.uri)}</code> {esc(e.extra.get('status'))}</li>"
                    for e in events[:10])
    return trained, f"<ul>{items}</ul>"


def overview_page(data: Overview | None, error: str | None, events: dict[int, list[ModelEvent]], conn_id: str,
                  run_url: Url, can_read: Callable[[str], bool]) -> str:
    """The Bria overview: projects → datasets → models.

    :param data: what Bria answered (``None`` on error).
    :param error: why Bria could not be read.
    :param events: model asset events by model id.
    :param conn_id: the connection read.
    :param run_url: ``run_url(dag_id, run_id)`` -> the Airflow UI page of a DAG run.
    :param can_read: whether the user may read a DAG.
    """
    head = f"<p class=muted>Read through the Airflow connection <code>{esc(conn_id)}</code>"
    if data is None:
        return layout("Bria overview", head + f".</p><p class=error id=bria-error>{esc(error)}</p>")
    read = datetime.fromtimestamp(data.read_at).strftime("%H:%M:%S")
    parts = [head + f" at {esc(read)} (cached briefly).</p>"]
    if not data.projects:
        parts.append("<p class=note>No Bria project yet: run <code>bria_dataset_preparation</code>.</p>")
    for status in data.projects:
        project = status.project
        parts.append(f"<section class=project data-project-id='{esc(project.get('id'))}'><h2>Project "
                     f"{esc(project.get('project_name') or project.get('name'))} <span class=muted>#"
                     f"{esc(project.get('id'))} · {esc(project.get('ip_type'))}</span></h2>")
        rows = "".join(
            f"<tr><td>{esc(d.get('id'))}</td><td>{esc(d.get('name'))}</td><td>{esc(d.get('status'))}</td>"
            f"<td>{esc(d.get('images_count', '?'))}</td><td>{'yes' if d.get('visual_schema') else 'no'}</td>"
            f"<td>{esc(d.get('captions_update_status'))}</td></tr>"
            for d in status.datasets
        )
        parts.append("<h3>Datasets</h3><table class=datasets><tr><th>id</th><th>name</th><th>status</th>"
                     f"<th>images</th><th>visual schema</th><th>captions</th></tr>{rows}</table>"
                     if status.datasets else "<p class=muted>No dataset.</p>")
        model_rows = []
        for m in status.models:
            try:
                mid = int(m.get("id"))
            except (TypeError, ValueError):
                mid = -1
            evs = events.get(mid, [])
            trained, ev_cell = _events_cell(evs, run_url, can_read)
            start = evs[-1].task_start if evs else None
            end = evs[-1].timestamp if evs else None
            model_rows.append(
                f"<tr class=model data-model-id='{esc(m.get('id'))}'><td>{esc(m.get('id'))}</td>"
                f"<td class=model-name>{esc(m.get('name'))}</td><td class=model-status>{esc(m.get('status'))}</td>"
                f"<td>{esc(m.get('dataset_id'))}</td><td>{esc(m.get('training_version'))}</td>"
                f"<td>{esc(_fmt_time(start))}</td><td>{esc(_fmt_time(end) or m.get('updated_at'))}</td>"
                f"<td>{esc(_elapsed(start, end))}</td><td>{trained}</td><td>{ev_cell}</td></tr>"
            )
        parts.append("<h3>Models</h3><table class=models><tr><th>id</th><th>name</th><th>status</th><th>dataset</th>"
                     "<th>version</th><th>training started</th><th>ended</th><th>elapsed</th><th>trained by</th>"
                     f"<th>asset events</th></tr>{''.join(model_rows)}</table>"
                     if model_rows else "<p class=muted>No model.</p>")
        parts.append("</section>")
    if data.truncated:
        parts.append("<p class=muted>More projects exist than are shown.</p>")
    return layout("Bria overview", "".join(parts))


def gallery_page(title: str, sections: Iterable[str], *, empty_note: str | None = None) -> str:
    """A gallery page made of task sections.

    :param title: page title.
    :param sections: HTML of :func:`task_section` calls.
    :param empty_note: shown when there is no section.
    """
    body = "".join(sections)
    if not body and empty_note:
        body = f"<p class=note>{esc(empty_note)}</p>"
    return layout(title, body)


def q(value: str) -> str:
    """Percent-quote one path segment.

    :param value: the segment.
    """
    return quote(str(value), safe="")
