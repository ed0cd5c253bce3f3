// The Usage Overview panel: seats used of the plan and the last 30 days' sessions, and what
// they mean for the page (no seat left: Add New Agent says why it is disabled).
import { request } from './api.js';

const USAGE = /* GraphQL */ `
  query Usage {
    organization { name humanAgentServiceEnabled seatLimit }
    usage { agentQuota { used limit remaining nearLimit } monthlySessions }
  }`;

const number = new Intl.NumberFormat();

/** Reads usage and the organization; draws the panel; returns both. */
export async function loadUsage() {
  const { organization, usage } = await request(USAGE);
  const { used, limit, remaining, nearLimit } = usage.agentQuota;
  const full = remaining <= 0;
  document.getElementById('quota-text').textContent = `${number.format(used)} / ${number.format(limit)}`;
  const state = document.getElementById('quota-state');
  state.textContent = full ? 'No seat left' : nearLimit ? 'Near the limit' : `${number.format(remaining)} seats left`;
  const bar = document.getElementById('quota-bar');
  bar.setAttribute('aria-valuemax', String(limit));
  bar.setAttribute('aria-valuenow', String(used));
  bar.setAttribute('aria-valuetext', `${used} of ${limit} seats used${full ? ', no seat left' : nearLimit ? ', near the limit' : ''}`);
  bar.classList.toggle('near', nearLimit && !full);
  bar.classList.toggle('full', full);
  state.className = `quota-state${full ? ' full' : nearLimit ? ' near' : ''}`;
  bar.querySelector('.fill').style.width = `${Math.min(100, limit ? (used / limit) * 100 : 100)}%`;
  document.getElementById('monthly-sessions').textContent = number.format(usage.monthlySessions);
  return { organization, quota: usage.agentQuota };
}
