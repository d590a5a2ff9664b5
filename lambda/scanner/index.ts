// Placeholder so the stack can bundle while the handler is written (replaced by the real handler).
export const handler = async (): Promise<never> => {
  throw new Error('scanner handler not implemented yet');
};
