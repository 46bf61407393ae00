// A list that stays fast with thousands of rows: rows are built once per record and kept
// by key, a change rebuilds only the rows whose record changed, and filtering hides rows
// rather than rebuilding them. One blocking query feeds the whole list.

export class KeyedRows {
  // tbody: where rows go; key(record) -> string; build(record) -> <tr>;
  // matches(record) -> bool decides which rows show.
  constructor(tbody, { key, build, matches }) {
    this.tbody = tbody;
    this.key = key;
    this.build = build;
    this.matches = matches;
    this.rows = new Map(); // key -> {row, json, record}
    this.order = [];
  }

  // Bring the rows in line with records (already in display order).
  update(records) {
    const seen = new Set();
    const order = [];
    const fresh = this.rows.size === 0;
    const fragment = document.createDocumentFragment();
    for (const record of records) {
      const key = this.key(record);
      const json = JSON.stringify(record);
      seen.add(key);
      order.push(key);
      const known = this.rows.get(key);
      if (known && known.json === json) continue;
      const row = this.build(record);
      row.hidden = !this.matches(record);
      if (known) known.row.replaceWith(row);
      else if (fresh) fragment.append(row);
      this.rows.set(key, { row, json, record });
    }
    for (const [key, { row }] of this.rows) {
      if (!seen.has(key)) {
        row.remove();
        this.rows.delete(key);
      }
    }
    if (fresh) {
      this.tbody.append(fragment);
    } else if (order.length !== this.order.length || order.some((key, i) => key !== this.order[i])) {
      this.tbody.replaceChildren(...order.map((key) => this.rows.get(key).row));
    }
    this.order = order;
    return this.shown();
  }

  // Re-apply matches() after the filter changed; returns how many rows show.
  refilter() {
    for (const { row, record } of this.rows.values()) row.hidden = !this.matches(record);
    return this.shown();
  }

  shown() {
    let n = 0;
    for (const { row } of this.rows.values()) if (!row.hidden) n += 1;
    return n;
  }
}
