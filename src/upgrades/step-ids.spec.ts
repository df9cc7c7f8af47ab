import { stepId } from './step-ids';

describe('stepId', () => {
  const pkg = '3b9a3c1e-0d7c-4f53-9d0e-6b1f2a4c5d6e';

  it('is a version-5 UUID, the same for the same package, use and plan key', () => {
    const id = stepId(pkg, 0, 'upgrade:a1');
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(stepId(pkg, 0, 'upgrade:a1')).toBe(id);
  });

  it('differs with the key, the package and the use', () => {
    const ids = [
      stepId(pkg, 0, 'upgrade:a1'),
      stepId(pkg, 0, 'upgrade:a2'),
      stepId(pkg, 0, 'switchover:g'),
      stepId(pkg, 1, 'upgrade:a1'),
      stepId(pkg.replace('3b', '4b'), 0, 'upgrade:a1'),
    ];
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("agrees with another implementation of version 5 (Python's uuid.uuid5 over the same namespace and name)", () => {
    // python3 -c "import uuid; print(uuid.uuid5(uuid.UUID('6f0c6a52-3d1e-4d8b-9c57-2b8f4e1a7d30'), 'p/0/upgrade:a'))"
    expect(stepId('p', 0, 'upgrade:a')).toBe('f6c90464-de99-51f4-aad1-705f7e8c038d');
  });
});
