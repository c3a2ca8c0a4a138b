"""The live dashboard page: one self-contained HTML document (no CDN; the device may be offline).

It connects to the daemon's WebSocket (`/ws`) and draws what the daemon pushes: health and
uptime, per-component rates with a short history (sparklines), input queue fill (orange from
80 % full, red while the channel drops items), a scrolling detection log (label, score,
latency; median latency in the header), checkpoint age, learning state, and a spike raster of
each network's output layer (rows named by the readout's labels when it has them). Elements
carry `data-*` counts so tests (and scripts) can read what is shown without looking at pixels.
"""

from __future__ import annotations

PAGE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>edgesnn dashboard</title>
<meta name="viewport" content="width=device-width,initial-scale=1">
<style>
:root{--bg:#101418;--panel:#182028;--fg:#d8dee6;--dim:#7d8a99;--ok:#3fb950;--warn:#d29922;
--bad:#f85149;--acc:#58a6ff}
*{box-sizing:border-box}body{margin:0;font:13px/1.4 system-ui,sans-serif;background:var(--bg);
color:var(--fg)}header{display:flex;gap:18px;align-items:center;padding:10px 16px;
background:var(--panel);border-bottom:1px solid #2a3440}h1{font-size:17px;margin:0}
.badge{padding:2px 10px;border-radius:10px;font-weight:600;color:#000;background:var(--dim)}
.badge.ok{background:var(--ok)}.badge.bad{background:var(--bad)}.badge.warn{background:var(--warn)}
.kv{color:var(--dim)}.kv b{color:var(--fg);font-weight:600}
main{display:grid;grid-template-columns:minmax(480px,3fr) minmax(300px,2fr);gap:12px;padding:12px}
section{background:var(--panel);border-radius:6px;padding:10px 12px;min-width:0}
h2{font-size:13px;margin:0 0 8px;color:var(--dim);text-transform:uppercase;letter-spacing:.05em}
table{border-collapse:collapse;width:100%}td,th{padding:3px 6px;text-align:right;
border-bottom:1px solid #24303c;white-space:nowrap}th{color:var(--dim);font-weight:500}
td:first-child,th:first-child,td.k{text-align:left}canvas.spark{width:120px;height:24px;
vertical-align:middle}.q{width:90px;height:10px;background:#24303c;border-radius:3px;
display:inline-block;vertical-align:middle;overflow:hidden}.q i{display:block;height:100%;
background:var(--acc)}tr.warn .q i{background:var(--warn)}tr.full .q i{background:var(--bad)}
tr.full td.drop{color:var(--bad);font-weight:600}
#log{height:330px;overflow-y:auto;font-family:ui-monospace,monospace;font-size:12px}
#log div{display:grid;grid-template-columns:60px 80px 1fr 60px 70px;gap:6px;padding:1px 0;
border-bottom:1px solid #1f2933}#log .label{color:var(--acc);font-weight:600}
#last{font-size:15px}#rasters canvas{width:100%;height:180px;background:#0b0f13;
border-radius:4px;display:block;margin-bottom:4px}.note{color:var(--dim);font-size:12px}
</style></head>
<body>
<header><h1>edgesnn · <span id="pipeline">…</span></h1>
<span id="health" class="badge">connecting</span>
<span class="kv">state <b id="state">–</b></span>
<span class="kv">uptime <b id="uptime">–</b></span>
<span class="kv">detections <b id="ndet">0</b></span>
<span class="kv">last detection <b id="last">–</b></span>
<span class="kv">latency p50 <b id="lat">–</b></span>
<span class="kv" id="ckpt" hidden>checkpoint <b></b></span>
<span class="kv" id="conn">connecting…</span></header>
<main>
<section><h2>Components</h2>
<table id="comps"><thead><tr><th>component</th><th>kind</th><th>rate /s</th>
<th>last 60 s</th><th>input queue</th><th>dropped</th><th>busy</th><th>errors</th></tr></thead>
<tbody></tbody></table>
<p class="note">rate: events/s for drivers, spikes/s for encoders and networks, detections/s
for readouts, messages/s for sinks. Queue orange from 80 % fill (a full "block" queue holds
back its producer), red while its when_full policy drops items.</p>
<h2>Output spikes</h2><div id="rasters"></div>
<p class="note" id="rnote">last 2 s of sensor time; one row per output neuron</p></section>
<section><h2>Detections</h2>
<div id="log" data-rows="0"><div class="note"><span>seq</span><span>sensor s</span>
<span>label</span><span>score</span><span>latency</span></div></div></section>
</main>
<script>
"use strict";
const $=id=>document.getElementById(id);
const HIST=120, RASTER_US=2000000, MAXLOG=300;
const comps={}, rasters={};
let ndet=0;const lats=[];
function fmtDur(s){s=Math.floor(s);const d=Math.floor(s/86400),h=Math.floor(s%86400/3600),
m=Math.floor(s%3600/60);return (d?d+'d ':'')+(d||h?h+'h ':'')+(d||h||m?m+'m ':'')+(s%60)+'s'}
function fmtNum(x){if(x>=1e6)return (x/1e6).toFixed(2)+' M';if(x>=1e4)return (x/1e3).toFixed(1)
+' k';return x>=100?x.toFixed(0):x.toFixed(1)}
function spark(cv,hist){const w=cv.width=cv.clientWidth*devicePixelRatio,
h=cv.height=cv.clientHeight*devicePixelRatio,g=cv.getContext('2d');g.clearRect(0,0,w,h);
if(hist.length<2)return;const mx=Math.max(...hist.map(p=>p[1]),1e-9),t1=hist[hist.length-1][0],
t0=t1-60;g.strokeStyle='#58a6ff';g.lineWidth=1.5*devicePixelRatio;g.beginPath();
hist.forEach((p,i)=>{const x=(p[0]-t0)/60*w,y=h-2-(p[1]/mx)*(h-4);i?g.lineTo(x,y):g.moveTo(x,y)});
g.stroke()}
function row(c){let r=comps[c.id];if(r)return r;const tr=document.createElement('tr');
tr.innerHTML='<td class="k"></td><td class="k"></td><td class="rate"></td>'
+'<td><canvas class="spark"></canvas></td>'
+'<td><span class="q"><i></i></span> <span class="qt"></span></td>'
+'<td class="drop"></td><td class="busy"></td><td class="err"></td>';
tr.children[0].textContent=c.id;tr.children[1].textContent=c.kind;
$('comps').tBodies[0].appendChild(tr);
r=comps[c.id]={tr,hist:[],prev:null,rate:0,busy:0,dropping:false};return r}
function components(t,list){for(const c of list){const r=row(c),td=r.tr.children;
const now={t,items:c.items,busy_s:c.busy_s,dropped:c.dropped};
if(!r.prev)r.prev=now;else if(t-r.prev.t>=0.4){const dt=t-r.prev.t;
r.rate=Math.max(0,(c.items-r.prev.items)/dt);r.busy=Math.max(0,(c.busy_s-r.prev.busy_s)/dt);
r.dropping=c.dropped>r.prev.dropped;r.prev=now;r.hist.push([t,r.rate]);
while(r.hist.length&&r.hist[0][0]<t-60)r.hist.shift();td[2].textContent=fmtNum(r.rate);
spark(td[3].firstChild,r.hist);td[6].textContent=(100*r.busy).toFixed(0)+' %';
r.tr.dataset.rate=r.rate.toFixed(3)}
if(c.capacity){const f=c.depth/c.capacity;td[4].querySelector('i').style.width=(100*f)+'%';
td[4].querySelector('.qt').textContent=c.depth+'/'+c.capacity;
r.tr.classList.toggle('full',r.dropping);r.tr.classList.toggle('warn',f>=.8&&!r.dropping)}
else{td[4].textContent='–'}td[5].textContent=c.dropped;td[7].textContent=c.errors;
td[1].textContent=c.kind+(c.learning===true?' · learning':'')}}
function detections(list){const log=$('log');for(const d of list){ndet++;
const e=document.createElement('div');e.className='det';e.dataset.label=d.label;
const lat=d.latency_ms==null?'–':d.latency_ms.toFixed(1)+' ms';
for(const [cls,v] of [['',d.seq],['',(d.t_sensor_us/1e6).toFixed(3)],['label',d.label],
['',(100*d.score).toFixed(0)+' %'],['',lat]]){const s=document.createElement('span');
s.className=cls;s.textContent=v;e.appendChild(s)}log.insertBefore(e,log.children[1]||null);
$('last').textContent=d.label+' ('+(100*d.score).toFixed(0)+' %, seq '+d.seq+')'}
for(const d of list)if(d.latency_ms!=null){lats.push(d.latency_ms);if(lats.length>50)lats.shift()}
if(lats.length){const s=[...lats].sort((a,b)=>a-b);$('lat').textContent=
s[Math.floor(s.length/2)].toFixed(1)+' ms'}
while(log.children.length>MAXLOG+1)log.removeChild(log.lastChild);
log.dataset.rows=log.children.length-1;$('ndet').textContent=ndet}
function raster(id,r){let s=rasters[id];if(!s){const h=document.createElement('div');
h.className='note';h.textContent=id+' ('+r.n+' neurons)';const cv=document.createElement('canvas');
cv.id='raster-'+id;cv.className='raster';cv.dataset.points='0';cv.dataset.total='0';
$('rasters').append(h,cv);s=rasters[id]={cv,n:r.n,t:[],i:[],total:0}}
for(let k=0;k<r.t.length;k++){s.t.push(r.t[k]);s.i.push(r.i[k])}s.total+=r.t.length;
const tmax=s.t.length?s.t[s.t.length-1]:0;let cut=0;while(cut<s.t.length&&s.t[cut]<tmax-RASTER_US)
cut++;if(cut){s.t.splice(0,cut);s.i.splice(0,cut)}const cv=s.cv,w=cv.width=cv.clientWidth,
h=cv.height=cv.clientHeight,g=cv.getContext('2d');g.clearRect(0,0,w,h);
g.fillStyle='#1c2530';for(let k=0;k<=4;k++)g.fillRect(Math.round(k*w/4),0,1,h);
if(r.rows)s.rows=r.rows;const rh=Math.max(1,h/s.n);
g.fillStyle='#f0883e';const t0=tmax-RASTER_US;
for(let k=0;k<s.t.length;k++){g.fillRect((s.t[k]-t0)/RASTER_US*w-1,s.i[k]*h/s.n,2,Math.max(1,rh-1))}
if(s.rows&&rh>=14){g.font='11px system-ui,sans-serif';s.rows.forEach((name,k)=>{
if(k&&name===s.rows[k-1])return;const tw=g.measureText(name).width;g.fillStyle='rgba(11,15,19,.8)';
g.fillRect(2,k*rh+2,tw+6,14);g.fillStyle='#c9d1d9';g.fillText(name,5,k*rh+13)})}
cv.dataset.points=String(s.t.length);cv.dataset.total=String(s.total)}
function apply(m){$('pipeline').textContent=m.pipeline;$('state').textContent=m.state;
$('uptime').textContent=fmtDur(m.uptime_s);const hb=$('health');
if(m.failure){hb.className='badge bad';hb.textContent='failed: '+m.failure}
else if(m.dropping){hb.className='badge warn';hb.textContent='dropping data'}
else if(m.state==='running'){hb.className='badge ok';hb.textContent='healthy'}
else{hb.className='badge';hb.textContent=m.state}
if(m.checkpoint_age_s!=null){$('ckpt').hidden=false;
$('ckpt').querySelector('b').textContent=fmtDur(m.checkpoint_age_s)+' ago'}
components(m.t,m.components);detections(m.detections);
for(const [id,r] of Object.entries(m.rasters))raster(id,r)}
function connect(){const ws=new WebSocket((location.protocol==='https:'?'wss://':'ws://')
+location.host+location.pathname.replace(/[^/]*$/,'')+'ws');
ws.onopen=()=>{$('conn').textContent='live'};
ws.onmessage=e=>{try{apply(JSON.parse(e.data))}catch(err){console.error(err)}};
ws.onclose=()=>{$('conn').textContent='disconnected; retrying';const hb=$('health');
hb.className='badge bad';hb.textContent='unreachable';setTimeout(connect,1000)}}
connect();
</script></body></html>
"""
