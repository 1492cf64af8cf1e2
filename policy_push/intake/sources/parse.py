"""Reading fetched pages: the character set (GBK sites are common), RSS/Atom with feedparser,
HTML list and detail pages with lxml and CSS selectors.  Broken HTML is read as browsers read
it (lxml's HTML parser recovers), never refused."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import feedparser
import lxml.html
from lxml import etree

__all__ = ["Detail", "Entry", "decode", "html_to_text", "parse_detail", "parse_feed", "parse_list"]

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_-]+)""", re.IGNORECASE)
_GB = {"gb2312", "gbk", "gb18030", "x-gbk", "cp936"}


def _codec(name: str) -> str:
    name = name.strip().lower()
    return "gb18030" if name in _GB else name  # gb18030 reads everything GB2312 and GBK pages hold


def decode(body: bytes, header_charset: str | None, forced: str | None = None) -> str:
    """The page's text: a forced charset, else the HTTP header's, else a <meta> one, else UTF-8
    if it decodes, else GB18030."""
    for name in (forced, header_charset):
        if name:
            try:
                return body.decode(_codec(name))
            except (LookupError, UnicodeDecodeError):
                pass
    meta = _META_CHARSET.search(body[:4096])
    if meta:
        try:
            return body.decode(_codec(meta.group(1).decode("ascii", "replace")))
        except (LookupError, UnicodeDecodeError):
            pass
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("gb18030", errors="replace")


_BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "table", "ul", "ol",
          "dd", "dt", "blockquote", "pre", "hr"}
_CELL = {"td", "th"}
_DROP = {"script", "style", "noscript", "iframe", "head", "nav", "footer"}


def html_to_text(element: lxml.html.HtmlElement) -> str:
    """Visible text with a line per block element and table cells joined by spaces."""
    parts: list[str] = []

    def walk(el: etree._Element) -> None:
        tag = el.tag if isinstance(el.tag, str) else ""
        if tag in _DROP:
            if el.tail:
                parts.append(el.tail)
            return
        if tag in _BLOCK:
            parts.append("\n")
        if el.text and tag not in _DROP:
            parts.append(el.text)
        for child in el:
            walk(child)
        if tag in _CELL:
            parts.append(" ")
        if tag in _BLOCK:
            parts.append("\n")
        if el.tail:
            parts.append(el.tail)

    walk(element)
    text = "".join(parts).replace("\r", "").replace("\u3000", " ").replace("\xa0", " ")
    lines = [re.sub(r"[ \t]+", " ", ln).strip() for ln in text.split("\n")]
    return "\n".join(ln for ln in lines if ln)


def _document(text: str, base_url: str) -> lxml.html.HtmlElement:
    # lxml refuses a str that declares its own encoding; the text is already decoded
    text = re.sub(r"^\s*<\?xml[^>]*\?>", "", text)
    doc = lxml.html.document_fromstring(text or "<html></html>")
    doc.make_links_absolute(base_url, resolve_base_href=True, handle_failures="ignore")
    return doc


@dataclass(frozen=True, slots=True)
class Entry:
    url: str
    title: str
    published_on: dt.date | None = None
    text: str = ""  #: what the feed itself says (summary / content), as text


def _same_site(url: str, base: str) -> bool:
    return urlsplit(url).scheme in ("http", "https")


def parse_list(text: str, base_url: str, selector: str, limit: int) -> list[Entry]:
    """The links a list page's selector picks, absolute, first occurrence kept."""
    doc = _document(text, base_url)
    out: list[Entry] = []
    seen: set[str] = set()
    for el in doc.cssselect(selector):
        anchors = [el] if el.tag == "a" else el.cssselect("a")
        for a in anchors:
            href = (a.get("href") or "").strip()
            if not href or href.startswith(("javascript:", "mailto:", "#")):
                continue
            url = urljoin(base_url, href).split("#", 1)[0]
            if url in seen or not _same_site(url, base_url):
                continue
            seen.add(url)
            out.append(Entry(url, (a.get("title") or a.text_content() or "").strip()))
            if len(out) >= limit:
                return out
    return out


def _feed_date(entry: dict) -> dt.date | None:  # type: ignore[type-arg]
    for key in ("published_parsed", "updated_parsed"):
        value = entry.get(key)
        if value:
            return dt.date(value.tm_year, value.tm_mon, value.tm_mday)
    return None


def parse_feed(body: bytes, base_url: str, limit: int) -> list[Entry]:
    """The entries of an RSS or Atom feed (feedparser reads both, and broken ones as well as it can)."""
    feed = feedparser.parse(body)
    out: list[Entry] = []
    for entry in feed.entries[:limit]:
        link = entry.get("link") or ""
        if not link:
            continue
        html = ""
        if entry.get("content"):
            html = entry["content"][0].get("value", "")
        html = html or entry.get("summary", "")
        text = html_to_text(_document(f"<div>{html}</div>", base_url)) if html else ""
        out.append(Entry(urljoin(base_url, link), (entry.get("title") or "").strip(), _feed_date(entry), text))
    return out


@dataclass(frozen=True, slots=True)
class Detail:
    title: str
    text: str
    published_on: dt.date | None


_DATE = re.compile(r"((?:19|20)\d{2})\s*[-年/.]\s*(\d{1,2})\s*[-月/.]\s*(\d{1,2})")


def _date(text: str) -> dt.date | None:
    m = _DATE.search(text)
    if not m:
        return None
    try:
        return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


def parse_detail(text: str, base_url: str, *, title: str, content: str | None, date: str | None) -> Detail:
    doc = _document(text, base_url)
    title_els = doc.cssselect(title) if title else []
    title_text = html_to_text(title_els[0]) if title_els else ""
    if not title_text:
        head = doc.find(".//title")
        title_text = (head.text_content() if head is not None else "").strip()
    body_els = doc.cssselect(content) if content else []
    body = body_els[0] if body_els else (doc.find("body") if doc.find("body") is not None else doc)
    body_text = html_to_text(body)
    published = None
    if date:
        date_els = doc.cssselect(date)
        published = _date(date_els[0].text_content()) if date_els else None
    if published is None:
        m = re.search(r"(?:发布|成文|印发)(?:日期|时间)[:：]?\s*([^\n]{0,20})", html_to_text(doc))
        published = _date(m.group(1)) if m else None
    return Detail(title_text.strip(), body_text, published)
