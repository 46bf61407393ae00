// A list that stays fast with thousands of rows: rows are built once per record and kept
// by key, a change rebuilds only the rows whose record changed, and filtering hides rows
// rather than rebuilding them. One blocking query feeds the whole list.
//
// The list is a CSS grid with table roles rather than a <table>: a table lays out every
// row whenever one changes, while grid rows are contained and laid out only on screen.

import { h } from "./dom.js";

// The list's frame: headings [[label, track]] with grid tracks ("2fr", "6rem"); rows go
// in .body, built with cell().
export function gridList(cls, headings) {
  const cols = headings.map(([, track]) => track).join(" ");
  const body = h("div", { class: "list-body", role: "rowgroup" });
  const head = h(
    "div",
    { class: "list-head", role: "rowgroup" },
    h("div", { class: "row", role: "row" }, headings.map(([label]) => h("div", { role: "columnheader" }, label))),
  );
  return { element: h("div", { class: `grid-list ${cls}`, role: "table", style: { "--cols": cols } }, head, body), body };
}

// One cell, labelled by its column for the stacked phone layout.
export function cell(label, attrs, ...children) {
  return h("div", { role: "cell", "data-label": label, ...attrs }, ...children);
}

const CHUNK = 100;
// Rows go into blocks of this many. A block off screen is skipped whole by the browser
// (content-visibility) and its rows are not even built until it first comes on screen,
// so a list of 5,000 costs about what its first screenful does. The price: the browser's
// find-in-page sees only blocks that have been shown (the search box sees everything).
const ROW_REM = 4.4;
// The height a skipped block is reckoned at, per shown row, until a drawn row is measured.

export class KeyedRows {
  // body: where rows go; key(record) -> string; build(record) -> a row element;
  // filter() -> (record) -> bool decides which rows show; it is asked once per pass, so
  // it reads the page's search and select boxes once, not once per row.
  constructor(body, { key, build, filter }) {
    this.body = body;
    this.key = key;
    this.build = build;
    this.filter = filter;
    this.rows = new Map(); // key -> {record, json, row (null until its block is shown)}
    this.order = [];
    this.onScreen = new Set([0]); // indexes of the blocks being drawn; the first is, at once
    const shown = (event) => {
      const index = [...body.children].indexOf(event.target);
      if (event.skipped) this.onScreen.delete(index);
      else {
        this.onScreen.add(index);
        this.fill(event.target);
      }
    };
    body.addEventListener("contentvisibilityautostatechange", shown, { capture: true });
  }

  // Bring the rows in line with records (already in display order); returns how many show.
  update(records) {
    const seen = new Set();
    const order = [];
    const matches = this.filter();
    for (const record of records) {
      const key = this.key(record);
      const json = JSON.stringify(record);
      seen.add(key);
      order.push(key);
      const known = this.rows.get(key);
      if (known && known.json === json) continue;
      let row = null;
      if (known?.row) {
        row = this.built(record, matches);
        known.row.replaceWith(row);
      }
      this.rows.set(key, { record, json, row });
    }
    for (const key of this.rows.keys()) {
      if (!seen.has(key)) this.rows.delete(key);
    }
    if (order.length !== this.order.length || order.some((key, i) => key !== this.order[i])) {
      const blocks = document.createDocumentFragment();
      for (let i = 0; i < order.length; i += CHUNK) {
        const block = document.createElement("div");
        block.className = "chunk";
        block.keys = order.slice(i, i + CHUNK);
        if (this.onScreen.has(i / CHUNK)) this.fill(block);
        blocks.append(block);
      }
      this.body.replaceChildren(blocks);
    }
    this.order = order;
    return this.size();
  }

  built(record, matches) {
    const row = this.build(record);
    row.hidden = !matches(record);
    return row;
  }

  // Build (or reuse) a block's rows, when it is about to be seen.
  fill(block) {
    if (block.filled) return;
    block.filled = true;
    const matches = this.filter();
    block.append(
      ...block.keys.map((key) => {
        const entry = this.rows.get(key);
        entry.row ??= this.built(entry.record, matches);
        return entry.row;
      }),
    );
  }

  // Re-apply the filter after it changed; returns how many rows show.
  refilter() {
    const matches = this.filter();
    for (const { row, record } of this.rows.values()) if (row) row.hidden = !matches(record);
    return this.size();
  }

  // Each block's reckoned height from the rows it shows; the total shown.
  size() {
    this.rowHeight ||= this.body.querySelector(".row:not([hidden])")?.offsetHeight;
    const height = this.rowHeight ? `${this.rowHeight}px` : `${ROW_REM}rem`;
    const matches = this.filter();
    let total = 0;
    for (const block of this.body.children) {
      let shown = 0;
      for (const key of block.keys) if (matches(this.rows.get(key).record)) shown += 1;
      block.hidden = shown === 0;
      block.style.containIntrinsicSize = `auto calc(${shown} * ${height})`;
      total += shown;
    }
    return total;
  }
}
