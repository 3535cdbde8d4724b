import { changecast, type ChangeEvent } from '@changecast/core'
import { createDb } from './db'

const db = createDb()
const feed = changecast(db)

const app = document.querySelector<HTMLDivElement>('#app')!
app.innerHTML = `
  <header><h1>Changecast playground</h1><p>Origin <code data-testid="origin"></code></p></header>
  <main>
    <section aria-labelledby="editor-title">
      <h2 id="editor-title">Tasks</h2>
      <form data-testid="task-form">
        <label for="task-title">New task</label>
        <input id="task-title" name="title" required autocomplete="off" />
        <button type="submit">Add</button>
      </form>
      <ul data-testid="tasks"></ul>
    </section>
    <section aria-labelledby="timeline-title">
      <h2 id="timeline-title">Events <span data-testid="event-count">0</span></h2>
      <ol data-testid="timeline" class="timeline"></ol>
    </section>
  </main>`

app.querySelector('[data-testid="origin"]')!.textContent = feed.origin.slice(0, 8)
const tasksList = app.querySelector<HTMLUListElement>('[data-testid="tasks"]')!
const timeline = app.querySelector<HTMLOListElement>('[data-testid="timeline"]')!
const counter = app.querySelector<HTMLSpanElement>('[data-testid="event-count"]')!
let count = 0

async function renderTasks(): Promise<void> {
  const tasks = await db.tasks.toArray()
  tasksList.replaceChildren(
    ...tasks.map((task) => {
      const item = document.createElement('li')
      item.textContent = task.title
      return item
    }),
  )
}

function renderEvent(event: ChangeEvent): void {
  const item = document.createElement('li')
  item.dataset.type = event.type
  item.dataset.source = event.source
  item.textContent = `${event.type} ${event.table} ${JSON.stringify(event.key)} (${event.source})`
  timeline.prepend(item)
  counter.textContent = String(++count)
}

feed.on('*', (event) => {
  renderEvent(event)
  void renderTasks()
})

app.querySelector<HTMLFormElement>('[data-testid="task-form"]')!.addEventListener('submit', (submit) => {
  submit.preventDefault()
  const form = submit.currentTarget as HTMLFormElement
  const input = form.elements.namedItem('title') as HTMLInputElement
  void db.tasks.add({ title: input.value, done: false })
  input.value = ''
})

void renderTasks()
