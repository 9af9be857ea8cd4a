// A double click is two clicks, and the second lands on whatever the first one's reply put under
// the pointer: the next device's Remove, Pause where Play was. Buttons that change the machine
// act on the first click only; a click from the keyboard (detail 0) always acts.
export function firstClick(event: MouseEvent): boolean {
  return event.detail <= 1;
}
