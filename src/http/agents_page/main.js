// The Agents page: signs in and out, and puts the directory, the usage panel, the dialogs and
// the live updates together.
import { ApiError, describe, request, setToken, token, whenSignedOut } from './api.js';
import { openCreateAgent } from './dialogs.js';
import { createDirectory, DIRECTORY_AGENT } from './directory.js';
import { connect } from './live.js';
import { loadUsage } from './usage.js';

const LOGIN = /* GraphQL */ `
  mutation SignIn($input: LoginInput!) {
    login(input: $input) {
      token
      agent { id displayName role }
      userErrors { field message code }
      retryAfterSeconds
    }
  }`;

const LOGOUT = /* GraphQL */ `mutation SignOut { logout }`;

const VIEWER = /* GraphQL */ `query Viewer { viewer { id displayName username role } }`;

const PRESENCE_CHANGED = /* GraphQL */ `
  subscription PresenceChanged {
    presenceChanged { status agent { id presence } }
  }`;

const AGENT_DIRECTORY_CHANGED = /* GraphQL */ `
  subscription AgentDirectoryChanged {
    agentDirectoryChanged { kind agentId agent { ...DirectoryAgent } }
  }
  ${DIRECTORY_AGENT}`;

const NOTICE_KEY = 'agentdesk.notice';
const $ = (id) => document.getElementById(id);

/** Polite announcements of results (a visually hidden status region). */
function say(text) {
  const region = $('announce') ?? document.body.appendChild(Object.assign(document.createElement('p'), {
    id: 'announce', className: 'visually-hidden',
  }));
  region.setAttribute('role', 'status');
  region.textContent = text;
}

function fail(text) {
  $('page-error').textContent = text;
}

/** Back to the sign-in form, with a fresh page (nothing of the session stays in memory). */
function signedOut(notice) {
  setToken(null);
  if (notice) sessionStorage.setItem(NOTICE_KEY, notice);
  location.replace('/agents');
}
whenSignedOut(() => signedOut('Your session has ended. Please sign in again.'));

// ---- sign in ------------------------------------------------------------------------

function showSignIn() {
  $('sign-in').hidden = false;
  const notice = sessionStorage.getItem(NOTICE_KEY);
  sessionStorage.removeItem(NOTICE_KEY);
  if (notice) $('sign-in-error').textContent = notice;
  const form = $('sign-in-form');
  form.elements.organization.value = localStorage.getItem('agentdesk.organization') ?? '';
  (form.elements.organization.value ? form.elements.username : form.elements.organization).focus();
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const button = form.querySelector('button[type=submit]');
    if (button.disabled) return;
    const input = {
      organization: form.elements.organization.value.trim(),
      username: form.elements.username.value.trim(),
      password: form.elements.password.value,
    };
    const error = $('sign-in-error');
    if (!input.organization || !input.username || !input.password) {
      error.textContent = 'Enter your organization, username and password.';
      return;
    }
    button.disabled = true;
    button.setAttribute('aria-busy', 'true');
    button.textContent = 'Signing in…';
    let waitSeconds = 0;
    try {
      const { login } = await request(LOGIN, { input });
      if (login.token) {
        setToken(login.token);
        localStorage.setItem('agentdesk.organization', input.organization);
        error.textContent = '';
        form.reset();
        $('sign-in').hidden = true;
        await start();
        return;
      }
      const rateLimited = login.userErrors.find((userError) => userError.code === 'RATE_LIMITED');
      if (rateLimited) {
        waitSeconds = login.retryAfterSeconds ?? 60;
        const at = new Date(Date.now() + waitSeconds * 1000).toLocaleTimeString();
        error.textContent = `Too many sign-in attempts. Try again in ${waitSeconds} seconds (at ${at}).`;
      } else {
        error.textContent = login.userErrors.map((userError) => userError.message).join(' ');
        form.elements.password.select();
      }
    } catch (failure) {
      error.textContent = describe(failure);
    } finally {
      button.removeAttribute('aria-busy');
      button.textContent = 'Sign in';
      if (waitSeconds) setTimeout(() => { button.disabled = false; }, waitSeconds * 1000);
      else button.disabled = false;
    }
  });
}

// ---- the signed-in page -------------------------------------------------------------

async function start() {
  let viewer;
  try {
    ({ viewer } = await request(VIEWER));
  } catch (error) {
    if (error instanceof ApiError && error.code === 'UNAUTHENTICATED') return;
    throw error;
  }
  if (!viewer) return signedOut();
  const admin = viewer.role === 'ADMIN';
  let live = null;

  $('whoami').hidden = false;
  $('whoami').textContent = `${viewer.displayName} (${admin ? 'Admin' : 'Agent'})`;
  const signOut = $('sign-out');
  signOut.hidden = false;
  signOut.addEventListener('click', async () => {
    signOut.disabled = true;
    live?.close();
    try {
      await request(LOGOUT);
    } catch {
      // Signed out already, or the server is away: the token is forgotten either way.
    }
    signedOut('You have signed out.');
  });

  const directory = createDirectory({ viewer, onChanged: () => usage(), say, fail });
  const addButton = $('add-agent');

  async function usage() {
    try {
      const { organization, quota } = await loadUsage();
      const serviceOn = organization.humanAgentServiceEnabled;
      $('service-off').hidden = serviceOn;
      directory.setServiceOn(serviceOn);
      const full = quota.remaining <= 0;
      addButton.disabled = !serviceOn || full;
      $('add-agent-reason').textContent = !serviceOn ? 'Adding agents is off while the human-agent service is not enabled.'
        : full ? `No seat left: all ${quota.limit} seats are in use. Delete an agent to free one, or ask for more seats.` : '';
    } catch (error) {
      fail(describe(error));
    }
  }

  addButton.addEventListener('click', () => {
    openCreateAgent(addButton, directory.queues(), (agent) => {
      say(`${agent.displayName} created.`);
      directory.refresh();
      usage();
    });
  });

  // Shown once there is something to show (the dialogs need the queues, too).
  await Promise.all([usage(), directory.start()]);
  $('app').hidden = false;

  // Live: presence for everyone; directory changes for admins (the API offers it to them).
  const status = $('live-status');
  status.textContent = 'Connecting…';
  live = connect(token(), {
    onState(state) {
      status.textContent = state === 'connected' ? 'Live' : 'Reconnecting…';
      status.dataset.state = state;
    },
    onReconnected() {
      directory.refresh();
      usage();
    },
    async onRefused() {
      try {
        const { viewer: still } = await request(VIEWER);
        if (!still) signedOut('Your session has ended. Please sign in again.');
      } catch {
        // request() already signs out on UNAUTHENTICATED; otherwise the socket retries.
      }
    },
  });
  const missed = () => {
    directory.refresh();
    usage();
  };
  live.subscribe(PRESENCE_CHANGED, {}, ({ presenceChanged }) => {
    directory.presence(presenceChanged.agent.id, presenceChanged.status);
  }, missed);
  if (admin) {
    live.subscribe(AGENT_DIRECTORY_CHANGED, {}, ({ agentDirectoryChanged }) => {
      directory.directory(agentDirectoryChanged);
    }, missed);
  }
  addEventListener('pagehide', () => live.close());
}

if (token()) {
  start().catch((error) => fail(describe(error)));
} else {
  showSignIn();
}
