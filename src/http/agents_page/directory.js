// The Agent Directory: the table (one card per agent on narrow screens), its search,
// filters and pages over the `agents` Relay connection, row menus, selection and the bulk
// Action menu. Live events change rows in place (see main.js for the subscriptions).
import { describe, request } from './api.js';
import { confirmDelete, openEditAgent } from './dialogs.js';
import { menuButton } from './menu.js';

export const PAGE_SIZE = 10;

export const DIRECTORY_AGENT = /* GraphQL */ `
  fragment DirectoryAgent on Agent {
    id displayName avatarInitial username email role enabled presence
    showRealPhoneNumbers maxConcurrentSessions queues { id name }
  }`;

const AGENTS = /* GraphQL */ `
  query Directory($first: Int, $after: String, $last: Int, $before: String, $filter: AgentFilter) {
    agents(first: $first, after: $after, last: $last, before: $before, filter: $filter,
           orderBy: { field: DISPLAY_NAME, direction: ASC }) {
      totalCount
      pageInfo { hasPreviousPage hasNextPage startCursor endCursor }
      nodes { ...DirectoryAgent }
    }
  }
  ${DIRECTORY_AGENT}`;

const QUEUES = /* GraphQL */ `
  query Queues { queues(first: 200) { nodes { id name } } }`;

const SET_AGENTS_ENABLED = /* GraphQL */ `
  mutation SetAgentsEnabled($ids: [ID!]!, $enabled: Boolean!) {
    setAgentsEnabled(ids: $ids, enabled: $enabled) {
      affectedCount
      agents { ...DirectoryAgent }
      userErrors { field message code }
    }
  }
  ${DIRECTORY_AGENT}`;

const $ = (id) => document.getElementById(id);

function element(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === 'class') node.className = value;
    else if (key.startsWith('data-') || key.startsWith('aria-') || key === 'role') node.setAttribute(key, value);
    else node[key] = value;
  }
  node.append(...children);
  return node;
}

/**
 * `viewer`: the signed-in agent. `onChanged()`: seats may have changed (usage is read again).
 * `say(text)`: announces a result politely; `fail(text)`: shows an error at the top.
 */
export function createDirectory({ viewer, onChanged, say, fail }) {
  const admin = viewer.role === 'ADMIN';
  let serviceOn = true;     // while the human-agent service is off, nothing is written
  let writable = admin;     // selection and bulk actions: an ADMIN while the service is on
  let queues = [];
  let page = { first: PAGE_SIZE };
  let offset = 0;
  let shown = [];          // the agents of the page, in order
  let pageInfo = null;
  const selected = new Set();
  let generation = 0;      // a reply to an older request is dropped

  const table = document.querySelector('table.agents');
  table.classList.toggle('read-only', !admin);
  $('bulk').hidden = !admin;
  $('add-agent').hidden = !admin;

  // ---- filters and pages ----
  const filters = $('filters');
  let searchTimer;
  filters.addEventListener('submit', (event) => event.preventDefault());
  filters.addEventListener('input', (event) => {
    clearTimeout(searchTimer);
    const delay = event.target.name === 'search' ? 250 : 0;
    searchTimer = setTimeout(() => first(), delay);
  });
  $('next').addEventListener('click', () => {
    offset += shown.length;
    page = { first: PAGE_SIZE, after: pageInfo.endCursor };
    refresh();
  });
  $('previous').addEventListener('click', () => {
    offset = Math.max(0, offset - PAGE_SIZE);
    page = { last: PAGE_SIZE, before: pageInfo.startCursor };
    refresh();
  });

  function filter() {
    const form = filters.elements;
    const value = {};
    if (form.search.value.trim()) value.search = form.search.value.trim();
    if (form.presence.value) value.presence = form.presence.value;
    if (form.queue.value) value.queueId = form.queue.value;
    if (form.enabled.value) value.enabled = form.enabled.value === 'true';
    return value;
  }

  function first() {
    page = { first: PAGE_SIZE };
    offset = 0;
    return refresh();
  }

  /** Reads the page shown again (after a change, a reconnect, or missed events). */
  async function refresh() {
    const mine = ++generation;
    table.setAttribute('aria-busy', 'true');
    try {
      const { agents } = await request(AGENTS, { ...page, filter: filter() });
      if (mine !== generation) return;
      // Going back past the start (rows were deleted meanwhile): show the first page.
      if (page.before && !agents.pageInfo.hasPreviousPage) offset = 0;
      if (!agents.nodes.length && (page.after || page.before)) return first();
      shown = agents.nodes;
      pageInfo = agents.pageInfo;
      for (const id of [...selected]) if (!shown.some((agent) => agent.id === id)) selected.delete(id);
      render(agents.totalCount);
    } catch (error) {
      fail(describe(error));
    } finally {
      if (mine === generation) table.removeAttribute('aria-busy');
    }
  }

  async function loadQueues() {
    const { queues: connection } = await request(QUEUES);
    queues = connection.nodes;
    const select = filters.elements.queue;
    const current = select.value;
    select.replaceChildren(element('option', { value: '' }, 'Any'),
      ...queues.map((queue) => element('option', { value: queue.id }, queue.name)));
    select.value = queues.some((queue) => queue.id === current) ? current : '';
  }

  // ---- drawing ----
  /** Redraws without losing the keyboard's place: focus returns to the element of the
   *  same agent it was on. */
  function keepingFocus(redraw) {
    const focused = document.activeElement;
    const inList = $('agents').contains(focused) && focused !== document.body;
    const key = inList ? (focused.dataset.focusKey ?? focused.closest('tr')?.dataset.id) : null;
    redraw();
    if (!key) return;
    const again = document.querySelector(`#agents [data-focus-key="${CSS.escape(key)}"]`)
      ?? document.querySelector(`#agents tr[data-id="${CSS.escape(key)}"] button, #agents tr[data-id="${CSS.escape(key)}"] input`);
    again?.focus();
  }

  function render(totalCount) {
    keepingFocus(() => $('agents').replaceChildren(...shown.map(row)));
    $('agents-count').textContent = String(totalCount);
    $('empty').hidden = shown.length > 0;
    $('range').textContent = shown.length
      ? `${offset + 1}–${offset + shown.length} of ${totalCount}`
      : `0 of ${totalCount}`;
    $('previous').disabled = !pageInfo.hasPreviousPage;
    $('next').disabled = !pageInfo.hasNextPage;
    syncSelection();
  }

  function statusBadge(presence) {
    const online = presence === 'ONLINE';
    return element('span', { class: `status ${online ? 'online' : 'offline'}` },
      element('span', { class: 'dot', 'aria-hidden': 'true' }), online ? 'Online' : 'Offline');
  }

  function row(agent) {
    const self = agent.id === viewer.id;
    const name = element('span', { class: `name${agent.enabled ? '' : ' struck'}` }, agent.displayName);
    const who = element('div', { class: 'who' },
      element('span', { class: 'avatar', 'aria-hidden': 'true' }, agent.avatarInitial), name);
    if (!agent.enabled) who.append(' ', element('span', { class: 'badge disabled' }, 'Disabled'));
    if (self) who.append(' ', element('span', { class: 'badge you' }, 'You'));
    const nameCell = element('td', { class: 'agent' }, who);

    const queueCell = element('td', { class: 'queues', 'data-label': 'Queues' });
    if (agent.queues.length) {
      queueCell.append(element('ul', { class: 'badges', 'aria-label': 'Queues' },
        ...agent.queues.map((queue) => element('li', { class: 'badge' }, queue.name))));
    } else {
      queueCell.append(element('span', { class: 'muted' }, 'No queue'));
    }

    const select = element('td', { class: 'select' });
    // No checkbox for oneself: an admin cannot disable or delete itself.
    if (admin && !self) {
      const box = element('input', { type: 'checkbox', 'aria-label': `Select ${agent.displayName}`, checked: selected.has(agent.id), disabled: !writable });
      box.addEventListener('change', () => {
        if (box.checked) selected.add(agent.id);
        else selected.delete(agent.id);
        syncSelection();
      });
      select.append(box);
    }

    const actions = element('td', { class: 'row-actions' });
    if (admin || self) {
      const button = element('button', {
        type: 'button', class: 'icon', 'aria-label': `Actions for ${agent.displayName}`,
        'data-focus-key': `actions:${agent.id}`, disabled: !serviceOn,
      }, element('span', { 'aria-hidden': 'true' }, '⋯'));
      actions.append(button);
      menuButton(button, () => rowItems(agent, button));
    }

    return element('tr', { 'data-id': agent.id },
      select, nameCell,
      element('td', { class: 'username', 'data-label': 'User Name' }, agent.username),
      queueCell,
      element('td', { class: 'presence', 'data-label': 'Status' }, statusBadge(agent.presence)),
      actions);
  }

  function rowItems(agent, button) {
    const self = agent.id === viewer.id;
    const items = [{ label: 'Edit Agent', run: () => edit(agent, button) }];
    if (admin && !self) {
      items.push(agent.enabled
        ? { label: 'Disable', run: () => setEnabled([agent], false) }
        : { label: 'Enable', run: () => setEnabled([agent], true) });
      items.push({ label: 'Delete Agent', run: () => remove([agent], button) });
    }
    return items;
  }

  // ---- selection and bulk ----
  const pageBox = $('select-page');
  const selectable = () => shown.filter((agent) => agent.id !== viewer.id);
  pageBox.addEventListener('change', () => {
    for (const agent of selectable()) {
      if (pageBox.checked) selected.add(agent.id);
      else selected.delete(agent.id);
    }
    for (const box of document.querySelectorAll('#agents td.select input')) box.checked = pageBox.checked;
    syncSelection();
  });

  function syncSelection() {
    const count = shown.filter((agent) => selected.has(agent.id)).length;
    const all = selectable().length;
    pageBox.checked = count > 0 && count === all;
    pageBox.indeterminate = count > 0 && count < all;
    pageBox.disabled = !writable || !all;
    $('selected-count').textContent = `${count} selected`;
    $('bulk-action').disabled = !writable || count === 0;
  }

  const chosen = () => shown.filter((agent) => selected.has(agent.id));
  menuButton($('bulk-action'), () => [
    { label: 'Enable', run: () => setEnabled(chosen(), true) },
    { label: 'Disable', run: () => setEnabled(chosen(), false) },
    { label: 'Delete', run: () => remove(chosen(), $('bulk-action')) },
  ]);

  // ---- actions ----
  function edit(agent, trigger) {
    openEditAgent(trigger, agent, { full: admin, queues }, (saved) => {
      say(`${saved.displayName} saved.`);
      replace(saved);
      if (admin) refresh();
    });
  }

  async function setEnabled(agents, enabled) {
    if (!agents.length) return;
    try {
      const { setAgentsEnabled } = await request(SET_AGENTS_ENABLED, { ids: agents.map((agent) => agent.id), enabled });
      if (setAgentsEnabled.userErrors.length) {
        fail(setAgentsEnabled.userErrors.map(({ field, message }) => {
          const who = field?.[0] === 'ids' ? agents[Number(field[1])]?.displayName : null;
          return who ? `${who}: ${message}` : message;
        }).join(' '));
        return;
      }
      fail('');
      for (const agent of setAgentsEnabled.agents) replace(agent);
      const names = agents.length === 1 ? agents[0].displayName : `${agents.length} agents`;
      say(`${names} ${enabled ? 'enabled' : 'disabled'}.`);
    } catch (error) {
      fail(describe(error));
    }
  }

  async function remove(agents, trigger) {
    if (!agents.length) return;
    try {
      await confirmDelete(trigger, agents, (deletedIds) => {
        for (const id of deletedIds) selected.delete(id);
        say(`${deletedIds.length === 1 ? '1 agent' : `${deletedIds.length} agents`} deleted.`);
        refresh();
        onChanged();
      });
    } catch (error) {
      fail(describe(error));
    }
  }

  /** Redraws one agent's row in place, if it is on the page. */
  function replace(agent) {
    const index = shown.findIndex((candidate) => candidate.id === agent.id);
    if (index < 0) return;
    shown[index] = { ...shown[index], ...agent };
    const old = document.querySelector(`#agents tr[data-id="${CSS.escape(agent.id)}"]`);
    keepingFocus(() => old?.replaceWith(row(shown[index])));
    syncSelection();
  }

  // ---- live ----
  let refreshTimer;
  function refreshSoon() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(refresh, 150);
  }

  return {
    async start() {
      await loadQueues();
      await first();
    },
    refresh,
    reloadQueues: loadQueues,
    queues: () => queues,
    /** While the human-agent service is off, every write action is disabled. */
    setServiceOn(value) {
      serviceOn = value;
      writable = admin && value;
      for (const box of document.querySelectorAll('#agents td.select input')) box.disabled = !writable;
      for (const button of document.querySelectorAll('#agents td.row-actions button')) button.disabled = !serviceOn;
      syncSelection();
    },
    /** A presenceChanged event: the badge changes in place. */
    presence(agentId, status) {
      const index = shown.findIndex((agent) => agent.id === agentId);
      if (index < 0) return;
      shown[index] = { ...shown[index], presence: status };
      const cell = document.querySelector(`#agents tr[data-id="${CSS.escape(agentId)}"] td.presence`);
      cell?.replaceChildren(statusBadge(status));
    },
    /** An agentDirectoryChanged event. */
    directory({ kind, agentId, agent }) {
      if (kind === 'UPDATED' && agent && shown.some((candidate) => candidate.id === agentId)) {
        replace(agent);
        return;
      }
      // Created or deleted (or moved in or out of the filter): read the page again.
      refreshSoon();
      if (kind !== 'UPDATED') onChanged();
    },
  };
}
