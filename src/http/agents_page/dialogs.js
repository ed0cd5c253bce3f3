// The dialogs: Add New Agent, Edit Agent and the delete confirmation. Each is a <dialog>
// opened modally: focus moves in, Escape closes, focus goes back to what opened it. A
// dialog stays open on any error: a userError in red under the field it names, anything
// else at the top (role="alert"); the submit button shows progress while the call runs.
import { describe, request } from './api.js';

const AGENT_FIELDS = /* GraphQL */ `
  fragment DialogAgent on Agent {
    id displayName username email role enabled presence
    showRealPhoneNumbers maxConcurrentSessions queues { id name }
  }`;

const CREATE_AGENT = /* GraphQL */ `
  mutation CreateAgent($input: CreateAgentInput!) {
    createAgent(input: $input) {
      agent { ...DialogAgent }
      userErrors { field message code }
    }
  }
  ${AGENT_FIELDS}`;

const UPDATE_AGENT = /* GraphQL */ `
  mutation UpdateAgent($input: UpdateAgentInput!) {
    updateAgent(input: $input) {
      agent { ...DialogAgent }
      userErrors { field message code }
    }
  }
  ${AGENT_FIELDS}`;

const PREVIEW_REMOVAL = /* GraphQL */ `
  query PreviewAgentRemoval($ids: [ID!]!) {
    previewAgentRemoval(ids: $ids) {
      agents { id displayName }
      notFoundIds
      requeuedConversations
      queuesLeftWithoutEligibleAgent { id name }
      seatsFreed
    }
  }`;

const DELETE_AGENTS = /* GraphQL */ `
  mutation DeleteAgents($ids: [ID!]!) {
    deleteAgents(ids: $ids) {
      deletedIds
      deletedCount
      userErrors { field message code }
    }
  }`;

// ---- the mechanics every dialog shares -------------------------------------------------

/** Opens `dialog` modally; when it closes, focus returns to `trigger` (or, if the list was
 *  redrawn meanwhile, to the element now carrying the same `data-focus-key`). */
function open(dialog, trigger) {
  clearErrors(dialog);
  const key = trigger?.dataset?.focusKey;
  dialog.addEventListener('close', () => {
    const target = trigger?.isConnected ? trigger
      : (key && document.querySelector(`[data-focus-key="${CSS.escape(key)}"]`)) || document.getElementById('directory-title');
    if (target && !target.hasAttribute('tabindex') && target.tagName === 'H2') target.tabIndex = -1;
    target?.focus();
  }, { once: true });
  dialog.showModal();
  const first = dialog.querySelector('input:not([type=hidden]), select, textarea, [data-submit]');
  first?.focus();
}

function clearErrors(dialog) {
  for (const element of dialog.querySelectorAll('[data-error]')) element.textContent = '';
  for (const input of dialog.querySelectorAll('[aria-invalid]')) input.removeAttribute('aria-invalid');
}

/** Shows userErrors: each under the field its `field` path names, the rest at the top. */
function showErrors(dialog, userErrors, nameOfId = () => null) {
  clearErrors(dialog);
  const general = [];
  let firstInvalid = null;
  for (const { field, message } of userErrors) {
    const name = field?.[field.length - 1];
    const slot = name && dialog.querySelector(`[data-error="${CSS.escape(name)}"]`);
    if (slot) {
      slot.textContent = slot.textContent ? `${slot.textContent} ${message}` : message;
      const input = dialog.querySelector(`[name="${CSS.escape(name)}"]`);
      if (input) {
        input.setAttribute('aria-invalid', 'true');
        if (slot.id && !(input.getAttribute('aria-describedby') ?? '').includes(slot.id)) {
          input.setAttribute('aria-describedby', `${input.getAttribute('aria-describedby') ?? ''} ${slot.id}`.trim());
        }
        firstInvalid ??= input;
      }
    } else {
      const who = field?.[0] === 'ids' ? nameOfId(Number(field[1])) : null;
      general.push(who ? `${who}: ${message}` : message);
    }
  }
  dialog.querySelector('[data-error="general"]').textContent = general.join(' ');
  firstInvalid?.focus();
}

function showFailure(dialog, error) {
  clearErrors(dialog);
  dialog.querySelector('[data-error="general"]').textContent = describe(error);
}

/** Runs `work` with the submit button showing progress. */
async function busy(dialog, work) {
  const button = dialog.querySelector('[data-submit]');
  const label = button.textContent;
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  button.textContent = button.dataset.busyLabel ?? 'Working…';
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
    button.textContent = label;
  }
}

/** Wires a dialog once: Cancel closes it, submitting runs whatever `submit` is set now. */
const handlers = new Map();
function wire(dialog) {
  if (handlers.has(dialog)) return;
  handlers.set(dialog, null);
  dialog.querySelector('[data-cancel]').addEventListener('click', () => dialog.close());
  dialog.querySelector('form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const submit = handlers.get(dialog);
    if (!submit || dialog.querySelector('[data-submit]').disabled) return;
    await busy(dialog, submit);
  });
}

function queueBoxes(dialog, queues, checkedIds, prefix) {
  const fieldset = dialog.querySelector('[data-queues]');
  const legend = fieldset.querySelector('legend');
  const boxes = queues.map((queue) => {
    const label = document.createElement('label');
    const box = document.createElement('input');
    box.type = 'checkbox';
    box.name = 'queueIds';
    box.value = queue.id;
    box.id = `${prefix}-queue-${queue.id}`;
    box.checked = checkedIds.has(queue.id);
    label.append(box, ` ${queue.name}`);
    return label;
  });
  if (!boxes.length) {
    const none = document.createElement('p');
    none.className = 'muted';
    none.textContent = 'The organization has no queue yet.';
    boxes.push(none);
  }
  fieldset.replaceChildren(legend, ...boxes);
}

const checkedQueues = (form) => [...form.querySelectorAll('input[name="queueIds"]:checked')].map((box) => box.value);

// ---- Add New Agent ------------------------------------------------------------------

/** Opens "Add New Agent"; `onCreated(agent)` after it was created (the dialog has closed). */
export function openCreateAgent(trigger, queues, onCreated) {
  const dialog = document.getElementById('create-dialog');
  wire(dialog);
  const form = dialog.querySelector('form');
  form.reset();
  queueBoxes(dialog, queues, new Set(), 'create');
  handlers.set(dialog, async () => {
    const value = (name) => form.elements[name].value;
    const input = {
      displayName: value('displayName'),
      username: value('username').trim(),
      password: value('password'),
      email: value('email').trim() || null,
      queueIds: checkedQueues(form),
    };
    try {
      const { createAgent } = await request(CREATE_AGENT, { input });
      if (createAgent.userErrors.length) return showErrors(dialog, createAgent.userErrors);
      dialog.close();
      onCreated(createAgent.agent);
    } catch (error) {
      showFailure(dialog, error);
    }
  });
  open(dialog, trigger);
}

// ---- Edit Agent ---------------------------------------------------------------------

/** Opens "Edit Agent" prefilled with `agent`. `full` = the viewer is an ADMIN (an AGENT
 *  edits only its own display name, password and e-mail). `onSaved(agent)` after saving. */
export function openEditAgent(trigger, agent, { full, queues }, onSaved) {
  const dialog = document.getElementById('edit-dialog');
  wire(dialog);
  const form = dialog.querySelector('form');
  form.reset();
  dialog.querySelector('[data-username]').textContent = `User Name: ${agent.username}`;
  form.elements.displayName.value = agent.displayName;
  form.elements.email.value = agent.email ?? '';
  const adminOnly = dialog.querySelector('[data-admin-only]');
  adminOnly.hidden = !full;
  if (full) {
    form.elements.showRealPhoneNumbers.checked = agent.showRealPhoneNumbers;
    form.elements.maxConcurrentSessions.value = agent.maxConcurrentSessions ?? '';
    queueBoxes(dialog, queues, new Set(agent.queues.map((queue) => queue.id)), 'edit');
  }
  handlers.set(dialog, async () => {
    const input = {
      id: agent.id,
      displayName: form.elements.displayName.value,
      email: form.elements.email.value.trim() || null,
    };
    // Blank keeps the password (the API reads "" as unchanged too).
    if (form.elements.newPassword.value) input.newPassword = form.elements.newPassword.value;
    if (full) {
      input.showRealPhoneNumbers = form.elements.showRealPhoneNumbers.checked;
      const max = form.elements.maxConcurrentSessions.value.trim();
      if (max === '' && !form.elements.maxConcurrentSessions.validity.badInput) input.maxConcurrentSessions = null;
      else if (form.elements.maxConcurrentSessions.validity.badInput) {
        return showErrors(dialog, [{ field: ['maxConcurrentSessions'], message: 'Enter a whole number from 1 to 1000, or leave it blank for unlimited.' }]);
      } else input.maxConcurrentSessions = Number(max);
      input.queueIds = checkedQueues(form);
    }
    try {
      const { updateAgent } = await request(UPDATE_AGENT, { input });
      if (updateAgent.userErrors.length) return showErrors(dialog, updateAgent.userErrors);
      dialog.close();
      onSaved(updateAgent.agent);
    } catch (error) {
      showFailure(dialog, error);
    }
  });
  open(dialog, trigger);
}

// ---- Delete confirmation ------------------------------------------------------------

const plural = (count, one, many) => `${count} ${count === 1 ? one : many}`;

/** Asks `previewAgentRemoval` what deleting `agents` would do, says it in an alertdialog,
 *  and deletes them on confirmation. `onDeleted(deletedIds)` afterwards. Rejects with the
 *  preview's error (the dialog is not opened then). */
export async function confirmDelete(trigger, agents, onDeleted) {
  const ids = agents.map((agent) => agent.id);
  const { previewAgentRemoval: preview } = await request(PREVIEW_REMOVAL, { ids });
  const dialog = document.getElementById('confirm-dialog');
  wire(dialog);
  const count = preview.agents.length;
  const what = plural(count, 'agent', 'agents');
  dialog.querySelector('#confirm-title').textContent = count === 1 ? `Delete ${preview.agents[0].displayName}?` : `Delete ${what}?`;
  const lines = [
    `${what} will be deleted: ${preview.agents.map((agent) => agent.displayName).join(', ')}. This cannot be undone; they are signed out at once.`,
    preview.requeuedConversations
      ? `${plural(preview.requeuedConversations, 'assigned conversation goes', 'assigned conversations go')} back to the queue to be routed again.`
      : 'No assigned conversation is affected.',
    preview.queuesLeftWithoutEligibleAgent.length
      ? `Left without an agent who can take a conversation now: ${preview.queuesLeftWithoutEligibleAgent.map((queue) => queue.name).join(', ')}.`
      : 'Every queue keeps an agent who can take conversations, or none is affected.',
    `${plural(preview.seatsFreed, 'seat is', 'seats are')} freed.`,
  ];
  if (preview.notFoundIds.length) lines.push(`${plural(preview.notFoundIds.length, 'agent no longer exists', 'agents no longer exist')} and is left out.`);
  dialog.querySelector('#confirm-text').replaceChildren(...lines.map((line) => {
    const paragraph = document.createElement('p');
    paragraph.textContent = line;
    return paragraph;
  }));
  const submit = dialog.querySelector('[data-submit]');
  submit.textContent = `Delete ${what}`;
  const found = preview.agents.map((agent) => agent.id);
  handlers.set(dialog, async () => {
    try {
      const { deleteAgents } = await request(DELETE_AGENTS, { ids: found });
      if (deleteAgents.userErrors.length) {
        return showErrors(dialog, deleteAgents.userErrors, (index) => preview.agents[index]?.displayName);
      }
      dialog.close();
      onDeleted(deleteAgents.deletedIds);
    } catch (error) {
      showFailure(dialog, error);
    }
  });
  open(dialog, trigger);
  // An alertdialog starts on its least destructive choice.
  dialog.querySelector('[data-cancel]').focus();
}
