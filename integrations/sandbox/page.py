"""The control page: one day view per calendar (rooms first), refreshing itself.

The page is static HTML plus a little script that polls ``/_sandbox/api/day`` every few
seconds, so a person can watch Reserva's sync write into a room's calendar. Calendars come
from the providers' ``sandbox.page_sources`` hooks.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .server import Sandbox

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Reserva sandbox</title>
<style>
 body{font:14px system-ui,sans-serif;margin:1rem;color:#222}
 header{display:flex;gap:1rem;align-items:baseline;flex-wrap:wrap}
 .cals{display:flex;gap:.75rem;overflow-x:auto;margin-top:1rem}
 .cal{min-width:200px;flex:1}
 .cal h2{font-size:13px;margin:.2rem 0;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
 .cal small{color:#666}
 .day{position:relative;height:960px;border:1px solid #ccc;background:
   repeating-linear-gradient(#fff 0 39px,#eee 39px 40px)}
 .ev{position:absolute;left:3px;right:3px;border-radius:3px;padding:2px 4px;font-size:12px;
   overflow:hidden;background:#cfe3ff;border-left:3px solid #2b6cb0}
 .ev.declined,.ev.cancelled{background:#fde2e2;border-color:#c53030;text-decoration:line-through}
 .ev.tentative{background:#fff3c4;border-color:#b7791f}
 .hours{position:absolute;left:-2.6rem;font-size:11px;color:#888}
 .grid{display:flex}.gutter{width:2.8rem;position:relative}
 #err{color:#c53030}
</style></head><body>
<header><h1>Reserva sandbox</h1>
 <label>Day <input type="date" id="day"></label>
 <span>Sandbox clock: <b id="now"></b></span>
 <span>API: <code>__BASE__/_sandbox/api/</code></span><span id="err"></span></header>
<p>Each column is a calendar as Outlook or Google would show it, 00:00-24:00 UTC.
The page refreshes every 3 seconds.</p>
<div class="grid"><div class="gutter" id="gutter"></div><div class="cals" id="cals"></div></div>
<script>
const HOUR = 40, dayInput = document.getElementById('day');
const ENT={'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'};
function esc(s){return String(s??'').replace(/[&<>"]/g,c=>ENT[c])}
function minutes(iso, day){
  const d=new Date(iso.endsWith('Z')||/[+-]\\d\\d:\\d\\d$/.test(iso)?iso:iso+'Z');
  const start=new Date(day+'T00:00:00Z');return Math.max(0,Math.min(1440,(d-start)/60000));}
(function(){let g='';
 for(let h=0;h<24;h++)g+=`<div class="hours" style="top:${h*HOUR+24}px">${h}:00</div>`;
 document.getElementById('gutter').innerHTML=g;})();
async function refresh(){
 try{
  const q=dayInput.value?('?date='+dayInput.value):'';
  const r=await fetch('/_sandbox/api/day'+q);const data=await r.json();
  if(!dayInput.value)dayInput.value=data.date;
  document.getElementById('now').textContent=data.now;
  document.getElementById('cals').innerHTML=data.calendars.map(c=>`<div class="cal">
   <h2 title="${esc(c.mailbox||c.calendar)}">${esc(c.title)}</h2>
   <small>${esc(c.provider)} &middot; ${esc(c.mailbox||c.calendar)}</small>
   <div class="day">${c.events.map(e=>{const top=minutes(e.start,data.date)*HOUR/60,
     h=Math.max(14,(minutes(e.end,data.date)-minutes(e.start,data.date))*HOUR/60);
     return `<div class="ev ${esc(e.status)}" style="top:${top}px;height:${h}px"
       title="${esc(e.id)}">${esc(e.subject)}<br><small>${esc(e.status||'')}</small></div>`}).join('')}
   </div></div>`).join('');
  document.getElementById('err').textContent='';
 }catch(e){document.getElementById('err').textContent='refresh failed: '+e;}
}
dayInput.addEventListener('change',refresh);refresh();setInterval(refresh,3000);
</script></body></html>
"""


def render_page(sandbox: Sandbox) -> str:
    """The control page's HTML (the data arrives through the day-view API)."""
    return _PAGE.replace("__BASE__", html.escape(sandbox.base_url))
