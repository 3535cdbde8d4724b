import { opened } from './shared'

// `?nomount`: the app imports the devtools entry (shared.ts) but does not mount it.
const ready = () => document.body.setAttribute('data-ready', '')
if (new URLSearchParams(location.search).has('nomount')) void opened.then(ready)
else {
  const handle = window.app.mount({ position: 'bottom-left' })
  void Promise.all([opened, handle.ready]).then(ready)
}
