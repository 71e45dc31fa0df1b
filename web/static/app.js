// Hindsight's pages: live updates from /events, and writes to the JSON
// API. No framework; every write is a same-origin fetch with the
// browser's credentials, and every error the API gives is shown as is.
(function () {
  'use strict';

  const page = document.body.dataset.page;
  const incident = document.body.dataset.incident;

  // call sends data as JSON and returns {status, body}; body is the
  // decoded answer, or {error} when the answer was not JSON.
  async function call(method, path, data) {
    let res;
    try {
      res = await fetch(path, {
        method: method,
        credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json', 'Accept': 'application/json' },
        body: data === undefined ? undefined : JSON.stringify(data),
      });
    } catch (e) {
      return { status: 0, body: { error: 'Hindsight did not answer: ' + e.message } };
    }
    let body;
    try {
      body = await res.json();
    } catch (e) {
      body = { error: res.status + ' ' + res.statusText };
    }
    return { status: res.status, body: body };
  }

  function say(el, text, kind) {
    if (!el) return;
    el.textContent = text;
    el.className = 'msg' + (kind ? ' ' + kind : '');
  }

  // msgOf is the status line next to an element.
  function msgOf(el) {
    const box = el.closest('form, p, .actions') || document;
    return box.querySelector('.msg');
  }

  function incidentPath(suffix) {
    return '/api/v1/incidents/' + encodeURIComponent(incident) + suffix;
  }

  // refresher re-reads a fragment and hands it to swap; calls while one
  // runs coalesce into one more run, so a burst of notices costs two
  // fetches.
  function refresher(url, swap) {
    let busy = false;
    let again = false;
    return async function run() {
      if (busy) { again = true; return; }
      busy = true;
      try {
        const res = await fetch(url(), { credentials: 'same-origin' });
        if (res.ok) swap(await res.text());
      } catch (e) {
        // The next notice or reconnect tries again.
      } finally {
        busy = false;
        if (again) { again = false; run(); }
      }
    };
  }

  // swapParts puts each top-level element of html in place of the
  // page's element of the same id.
  function swapParts(html) {
    const t = document.createElement('template');
    t.innerHTML = html;
    for (const part of Array.from(t.content.children)) {
      const old = part.id && document.getElementById(part.id);
      if (old) old.replaceWith(part);
    }
  }

  // live follows /events: onNotice(notice) for each notice, and
  // onNotice(null) after a reconnect, when notices may have been missed.
  function live(onNotice) {
    const status = document.getElementById('live-status');
    if (!window.EventSource) return;
    const es = new EventSource('/events');
    let opened = false;
    es.onopen = function () {
      if (status) { status.textContent = '● live'; status.className = 'live on'; }
      if (opened) onNotice(null);
      opened = true;
    };
    es.onerror = function () {
      if (status) { status.textContent = '○ reconnecting'; status.className = 'live muted'; }
    };
    es.addEventListener('notice', function (e) {
      let n;
      try { n = JSON.parse(e.data); } catch (err) { return; }
      onNotice(n);
    });
  }

  function flash(el) {
    if (!el) return;
    el.classList.remove('flash');
    void el.offsetWidth;
    el.classList.add('flash');
  }

  // The incidents page: re-read the rows when any incident changes.
  function incidentsPage() {
    const rows = document.getElementById('rows');
    let changed = null;
    const refresh = refresher(function () { return document.body.dataset.rows; }, function (html) {
      rows.innerHTML = html;
      if (changed) flash(rows.querySelector('tr[data-id="' + CSS.escape(changed) + '"]'));
    });
    live(function (n) {
      changed = n && n.incident;
      refresh();
    });
    const form = document.getElementById('declare-form');
    form.addEventListener('submit', async function (e) {
      e.preventDefault();
      const f = new FormData(form);
      const data = {};
      for (const k of ['service', 'title', 'severity', 'start', 'description']) {
        data[k] = String(f.get(k) || '').trim();
      }
      say(msgOf(form), 'Declaring…');
      const r = await call('POST', '/api/v1/incidents', data);
      if (r.status === 201 && r.body.incident) {
        location.assign('/incidents/' + encodeURIComponent(r.body.incident.id));
      } else if (r.status === 202) {
        say(msgOf(form), r.body.message || 'Recorded; it will appear in a moment.', 'ok');
      } else {
        say(msgOf(form), r.body.error || 'failed', 'error');
      }
    });
  }

  // An incident's page and its editor: re-read the live part when a
  // notice names this incident, or one merged into it.
  function incidentPages() {
    const refresh = refresher(function () { return document.body.dataset.live; }, function (html) {
      swapParts(html);
      afterRefresh();
    });
    live(function (n) {
      if (n && n.change === 'merged' && n.incident === incident && n.into) {
        location.assign(location.pathname.replace(incident, encodeURIComponent(n.into)));
        return;
      }
      if (!n || n.incident === incident || n.into === incident) refresh();
    });

    document.addEventListener('click', async function (e) {
      const b = e.target.closest('button[data-action]');
      if (!b) return;
      const act = b.dataset.action;
      if (act === 'hide') {
        b.disabled = true;
        const r = await call('PUT', incidentPath('/hidden'), { entry: b.dataset.entry, hidden: b.dataset.hidden === 'true' });
        if (r.status >= 300) { b.disabled = false; alertError(b, r); return; }
        refresh();
      } else if (act === 'state') {
        const r = await call('PUT', incidentPath('/state'), { state: b.dataset.state, author: author() });
        if (r.status >= 300) { alertError(b, r); return; }
        if (r.status === 202) say(msgOf(b), r.body.message, 'ok');
        refresh();
      } else if (act === 'end') {
        const r = await call('POST', incidentPath('/end'), { author: author() });
        if (r.status >= 300) { alertError(b, r); return; }
        refresh();
      }
    });

    document.addEventListener('submit', async function (e) {
      const form = e.target;
      if (form.id !== 'note-form') return;
      e.preventDefault();
      const f = new FormData(form);
      const data = { text: String(f.get('text') || '').trim(), author: author() };
      const at = String(f.get('time') || '').trim();
      if (at) data.time = at;
      say(msgOf(form), 'Adding…');
      const r = await call('POST', incidentPath('/notes'), data);
      if (r.status !== 201 && r.status !== 200) {
        say(msgOf(form), r.body.error || 'failed', 'error');
        return;
      }
      // The note is on the stream; the correlator's notice re-reads the
      // timeline once it is folded in.
      form.reset();
      say(msgOf(form), 'Added; it appears on the timeline when it is folded in.', 'ok');
      refresh();
    });

    if (page === 'edit') editor(refresh);
  }

  function alertError(el, r) {
    say(msgOf(el), (r.body && r.body.error) || ('failed: ' + r.status), 'error');
  }

  let afterRefresh = function () {};

  function author() {
    const input = document.querySelector('#draft-form input[name="author"]');
    return input ? input.value.trim() : '';
  }

  // The draft editor.
  function editor(refresh) {
    const form = document.getElementById('draft-form');
    const items = document.getElementById('items');
    const itemTemplate = document.getElementById('item-template');
    const conflict = document.getElementById('conflict');
    const msg = form.querySelector('.msg');
    const fields = ['summary', 'impact', 'root_cause', 'resolution', 'impact_start'];
    const labels = { summary: 'Summary', impact: 'Impact', root_cause: 'Root cause', resolution: 'Resolution', impact_start: 'Impact began', action_items: 'Action items' };

    const who = form.elements.author;
    who.value = localStorage.getItem('hindsight.author') || '';
    who.addEventListener('change', function () { localStorage.setItem('hindsight.author', who.value.trim()); });

    function version() { return parseInt(form.elements.version.value, 10) || 0; }

    // A save by someone else shows up in the live part's version before
    // this form is saved: say so, rather than wait for the conflict.
    afterRefresh = function () {
      const facts = document.querySelector('#live-top .facts');
      const v = facts ? parseInt(facts.dataset.version, 10) : version();
      if (v > version() && conflict.hidden) {
        say(msg, 'Someone saved version ' + v + ' since you opened this page; saving will show you both texts.', 'warn');
      }
    };

    function addItem(item) {
      const row = itemTemplate.content.firstElementChild.cloneNode(true);
      if (item) {
        row.querySelector('[name="text"]').value = item.text || '';
        row.querySelector('[name="owner"]').value = item.owner || '';
        row.querySelector('[name="due"]').value = (item.due || '').slice(0, 10);
        row.querySelector('[name="done"]').checked = !!item.done;
      }
      items.appendChild(row);
      return row;
    }

    function readForm() {
      const out = { version: version(), author: author(), action_items: [] };
      for (const k of fields) out[k] = form.elements[k].value.trim();
      for (const row of items.querySelectorAll('tr.item')) {
        const text = row.querySelector('[name="text"]').value.trim();
        if (!text) continue;
        out.action_items.push({
          text: text,
          owner: row.querySelector('[name="owner"]').value.trim(),
          due: row.querySelector('[name="due"]').value,
          done: row.querySelector('[name="done"]').checked,
        });
      }
      return out;
    }

    // fill puts the API's postmortem fields into the form.
    function fill(pm) {
      const f = pm.fields || {};
      form.elements.version.value = pm.version;
      for (const k of fields) form.elements[k].value = f[k] || '';
      items.replaceChildren();
      for (const it of f.action_items || []) addItem(it);
    }

    function itemsText(list) {
      return (list || []).map(function (it) {
        return '- [' + (it.done ? 'x' : ' ') + '] ' + it.text + (it.owner ? ' (' + it.owner + ')' : '') + (it.due ? ' due ' + String(it.due).slice(0, 10) : '');
      }).join('\n');
    }

    let theirs = null;
    function showConflict(body, mine) {
      theirs = body.postmortem;
      const f = theirs.fields || {};
      conflict.querySelector('.msg').textContent = body.error;
      conflict.querySelector('.their-version').textContent = String(body.version);
      const tbody = conflict.querySelector('tbody');
      tbody.replaceChildren();
      for (const k of fields.concat(['action_items'])) {
        const a = k === 'action_items' ? itemsText(f[k]) : (f[k] || '');
        const b = k === 'action_items' ? itemsText(mine[k]) : (mine[k] || '');
        const tr = document.createElement('tr');
        if (a !== b) tr.className = 'differs';
        for (const text of [labels[k], a, b]) {
          const td = document.createElement('td');
          td.textContent = text;
          tr.appendChild(td);
        }
        tbody.appendChild(tr);
      }
      conflict.hidden = false;
      conflict.scrollIntoView({ block: 'nearest' });
    }

    form.addEventListener('submit', async function (e) {
      e.preventDefault();
      const mine = readForm();
      say(msg, 'Saving…');
      const r = await call('PUT', incidentPath('/draft'), mine);
      if (r.status === 200 && r.body.incident) {
        form.elements.version.value = r.body.incident.postmortem.version;
        say(msg, 'Saved: version ' + r.body.incident.postmortem.version + '.', 'ok');
        refresh();
      } else if (r.status === 202) {
        say(msg, r.body.message || 'Recorded; reload in a moment.', 'warn');
      } else if (r.status === 409 && r.body.postmortem) {
        say(msg, 'Not saved: someone else saved first. See both texts below.', 'error');
        showConflict(r.body, mine);
      } else {
        say(msg, r.body.error || ('failed: ' + r.status), 'error');
      }
    });

    document.addEventListener('click', function (e) {
      const b = e.target.closest('button[data-action]');
      if (!b) return;
      switch (b.dataset.action) {
        case 'add-item': addItem().querySelector('input').focus(); break;
        case 'remove-item': b.closest('tr').remove(); break;
        case 'take-theirs': fill(theirs); say(msg, 'Loaded version ' + theirs.version + '; re-apply your words from the table and save.', 'warn'); break;
        case 'keep-mine': form.elements.version.value = theirs.version; say(msg, 'Your text is now on version ' + theirs.version + '; saving replaces theirs.', 'warn'); break;
        case 'close-conflict': conflict.hidden = true; break;
      }
    });
  }

  if (page === 'incidents') incidentsPage();
  if (page === 'incident' || page === 'edit') incidentPages();
})();
