// include/linux/mm_types.h: the parts of vm_area_struct the device-memory code needs.
// Address spaces extend it.

export interface vm_area_struct {
  vm_start: number;
  vm_end: number;
  vm_flags: number;
}

// vm_fault_t bits (include/linux/mm_types.h).
export const VM_FAULT_OOM = 0x0001;
export const VM_FAULT_SIGBUS = 0x0002;
export const VM_FAULT_MAJOR = 0x0004;
export const VM_FAULT_WRITE = 0x0008;
export const VM_FAULT_HWPOISON = 0x0010;
export const VM_FAULT_SIGSEGV = 0x0040;
export const VM_FAULT_NOPAGE = 0x0100;
export const VM_FAULT_LOCKED = 0x0200;
export const VM_FAULT_RETRY = 0x0400;
