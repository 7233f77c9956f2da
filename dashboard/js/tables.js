// Table cells and bodies for the admin pages (admin, alarm load): text only, never HTML.

import { t } from "./i18n.js";

/** A data cell; empty values show as "–". */
export function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text ?? "–";
  if (className) td.className = className;
  return td;
}

/** Replace a table body's rows; with none, one "nothing here" row across `columns`. */
export function fillTable(tbody, rows, columns) {
  if (!rows.length) {
    const tr = document.createElement("tr");
    const td = cell(t("admin.empty"));
    td.colSpan = columns;
    tr.append(td);
    tbody.replaceChildren(tr);
    return;
  }
  tbody.replaceChildren(...rows);
}
