// Add: files or a CAR dropped (or chosen) are sent to POST /add (multipart;
// ?format=car for a CAR) with XMLHttpRequest for its upload progress; the
// added root's pin status (GET /pins/{cid}) is then followed until pinned.

import { authHeaders, getJson, signIn, withQuery } from "./api.js";
import { errorText, h, say } from "./dom.js";
import { summary } from "./pins.js";

export function render(root, { signal }) {
  const input = h("input", { type: "file", id: "add-files", multiple: true });
  const name = h("input", { id: "add-name", autocomplete: "off" });
  const car = h("input", { type: "checkbox", id: "add-car" });
  const progress = h("progress", { id: "add-progress", max: 100, value: 0, "aria-label": "Upload" });
  const out = h("div", { id: "add-result", "aria-live": "polite" });
  const drop = h("div", { class: "drop", id: "add-drop" },
    h("label", { for: "add-files" }, "Drop files or a .car file here, or choose them:"), " ", input);
  root.append(
    h("h2", {}, "Add"),
    drop,
    h("form", { class: "inline", onsubmit: (e) => e.preventDefault() },
      h("label", {}, "Name", name),
      h("label", {}, h("span", {}, "Import as CAR"), car)),
    h("label", { for: "add-progress" }, "Upload"), progress, out);

  const send = (files) => {
    if (!files.length) return;
    const isCar = car.checked || (files.length === 1 && files[0].name.endsWith(".car"));
    upload(files, { name: name.value || files[0].name, car: isCar }, progress, out, signal);
  };
  input.addEventListener("change", () => send([...input.files]));
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    send([...e.dataTransfer.files]);
  });
}

function upload(files, { name, car }, progress, out, signal) {
  const form = new FormData();
  for (const f of files) form.append("file", f, f.name);
  const path = withQuery("/add", {
    name, format: car ? "car" : "", "stream-channels": "false",
    "wrap-with-directory": files.length > 1 ? "true" : "",
  });
  const xhr = new XMLHttpRequest();
  xhr.open("POST", path);
  for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
  xhr.upload.addEventListener("progress", (e) => {
    if (e.lengthComputable) progress.value = Math.round((100 * e.loaded) / e.total);
  });
  signal.addEventListener("abort", () => xhr.abort(), { once: true });
  out.replaceChildren(h("p", {}, "Uploading…"));
  xhr.addEventListener("load", () => {
    if (xhr.status === 401) {
      signIn().then(
        () => upload(files, { name, car }, progress, out, signal),
        () => out.replaceChildren(h("p", { class: "error" }, "Add failed: not signed in.")));
      return;
    }
    let added;
    try {
      added = JSON.parse(xhr.responseText);
    } catch {
      added = null;
    }
    if (xhr.status !== 200 || !Array.isArray(added)) {
      out.replaceChildren(h("p", { class: "error" }, `Add failed: ${added?.message || xhr.status}`));
      return;
    }
    progress.value = 100;
    const rootCid = added.at(-1).cid;
    const status = h("span", { id: "add-status" }, "…");
    out.replaceChildren(
      h("p", {}, "Added ", h("a", { class: "mono", id: "add-cid", href: `#/pins/${encodeURIComponent(rootCid)}` }, rootCid),
        ": ", status),
      h("ul", {}, added.map((a) => h("li", { class: "mono" }, `${a.name || "(root)"} ${a.cid}`))));
    follow(rootCid, status, signal);
  });
  xhr.addEventListener("error", () => out.replaceChildren(h("p", { class: "error" }, "Upload failed.")));
  xhr.send(form);
}

/** Polls the pin's status until every peer has it pinned. */
async function follow(cid, el, signal) {
  while (!signal.aborted) {
    try {
      const st = summary(await getJson(`/pins/${encodeURIComponent(cid)}`, { signal }));
      el.textContent = st;
      el.className = `status-${st}`;
      if (st === "pinned") {
        say(`${cid} is pinned.`);
        return;
      }
    } catch (e) {
      if (e.name === "AbortError") return;
      el.textContent = errorText(e);
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}
